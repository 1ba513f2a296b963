package emulator

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

// Create, Close, New on the same StateDir: devices, deletions, finished task
// results and a task still running at shutdown all survive; files are 0600 in
// a 0700 directory; the log never shows a secret.
func TestRestartKeepsState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	clk := newClock()
	var logs bytes.Buffer
	cfg := Config{StateDir: dir, TaskDelay: 10 * time.Second, Now: clk.Now, Log: slog.New(slog.NewTextHandler(&logs, nil))}

	e1, srv1 := start(t, cfg)
	c := sdk(t, srv1, testID, testKey)
	create := func(c *iot.Client, names ...string) string {
		mr := iot.NewCreateMultiDeviceRequest()
		mr.ProductId, mr.DeviceNames = ptr(testProduct), ptrs(names)
		r, err := c.CreateMultiDevice(mr)
		if err != nil {
			t.Fatal(err)
		}
		return *r.Response.TaskId
	}
	done := create(c, "d1", "d2", "d3")
	clk.Add(10 * time.Second)
	if n := len(e1.TencentDeviceNames(testProduct)); n != 3 {
		t.Fatalf("%d devices", n)
	}
	before := map[string]string{}
	for _, n := range []string{"d1", "d2", "d3"} {
		before[n], _ = e1.TencentDevice(testProduct, n)
	}
	del := iot.NewDeleteDeviceRequest()
	del.ProductId, del.DeviceName = ptr(testProduct), ptr("d3")
	if _, err := c.DeleteDevice(del); err != nil {
		t.Fatal(err)
	}
	running := create(c, "r1", "r2")
	clk.Add(3 * time.Second) // running, not finished
	srv1.Close()
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}

	e2, srv2 := start(t, cfg)
	c2 := sdk(t, srv2, testID, testKey)
	for _, n := range []string{"d1", "d2"} {
		if psk, ok := e2.TencentDevice(testProduct, n); !ok || psk != before[n] {
			t.Fatalf("%s lost or changed across restart", n)
		}
	}
	if _, ok := e2.TencentDevice(testProduct, "d3"); ok {
		t.Fatal("deleted device came back")
	}
	// The finished task's results are still served, deleted device included.
	dr := iot.NewDescribeMultiDevicesRequest()
	dr.ProductId, dr.TaskId, dr.Limit = ptr(testProduct), &done, ptr(uint64(100))
	r, err := c2.DescribeMultiDevices(dr)
	if err != nil || len(r.Response.DevicesInfo) != 3 || *r.Response.DevicesInfo[2].DevicePsk != before["d3"] {
		t.Fatalf("finished task after restart: %v", err)
	}
	// The running task continues.
	tr := iot.NewDescribeMultiDevTaskRequest()
	tr.ProductId, tr.TaskId = ptr(testProduct), &running
	if s, err := c2.DescribeMultiDevTask(tr); err != nil || *s.Response.TaskStatus != 1 {
		t.Fatalf("running task after restart: %v", err)
	}
	clk.Add(7 * time.Second)
	if s, err := c2.DescribeMultiDevTask(tr); err != nil || *s.Response.TaskStatus != 2 {
		t.Fatalf("running task did not finish: %v", err)
	}
	if got := strings.Join(e2.TencentDeviceNames(testProduct), ","); got != "d1,d2,r1,r2" {
		t.Fatalf("devices %s", got)
	}
	r1, _ := e2.TencentDevice(testProduct, "r1")

	// And once more, with no requests in between: the completion was persisted.
	srv2.Close()
	e2.Close()
	e3, _ := start(t, cfg)
	if psk, ok := e3.TencentDevice(testProduct, "r1"); !ok || psk != r1 {
		t.Fatal("completed task's device lost")
	}

	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v %v", st.Mode(), err)
	}
	files, _ := os.ReadDir(dir)
	for _, f := range files {
		info, _ := f.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", f.Name(), info.Mode())
		}
	}
	if logs.Len() == 0 || strings.Contains(logs.String(), before["d1"]) || strings.Contains(logs.String(), testKey) {
		t.Fatalf("log empty or leaks a secret:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "action=CreateMultiDevice") || !strings.Contains(logs.String(), "product="+testProduct) {
		t.Fatalf("log lacks action/product:\n%s", logs.String())
	}
}

// A torn last line (a crash mid-append, never acknowledged) is dropped; a
// corrupt line before the end refuses to start rather than lose secrets.
func TestJournalDamage(t *testing.T) {
	dir := t.TempDir()
	e, _ := start(t, Config{StateDir: dir, TaskDelay: -1})
	e.Close()
	path := filepath.Join(dir, journalName)
	good, _ := os.ReadFile(path)

	os.WriteFile(path, append(append([]byte{}, good...), `{"v":"tencent","op":"dev`...), 0o600)
	e2, err := New(Config{StateDir: dir, SecretID: testID, SecretKey: testKey})
	if err != nil {
		t.Fatalf("torn tail: %v", err)
	}
	e2.Close()

	os.WriteFile(path, append([]byte("garbage\n"), good...), 0o600)
	if _, err := New(Config{StateDir: dir, SecretID: testID, SecretKey: testKey}); err == nil {
		t.Fatal("corrupt journal accepted")
	}
}
