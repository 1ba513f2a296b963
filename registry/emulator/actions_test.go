package emulator

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

// Every action through the official SDK, with the error codes the cloud uses.
func TestActionsThroughSDK(t *testing.T) {
	e, srv := start(t, Config{TaskDelay: -1, Quota: 100, Products: []string{testProduct, "KLMNOPQRST"}})
	c := sdk(t, srv, testID, testKey)

	// DescribeProducts
	pr, err := c.DescribeProducts(&iot.DescribeProductsRequest{BaseRequest: iot.NewDescribeProductsRequest().BaseRequest, Limit: ptr(uint64(10))})
	if err != nil {
		t.Fatal(err)
	}
	if *pr.Response.TotalCount != 2 || *pr.Response.Products[0].ProductId != testProduct ||
		*pr.Response.Products[0].ProductProperties.EncryptionType != "2" {
		t.Fatalf("DescribeProducts: %s", pr.ToJsonString())
	}

	// CreateDevice, generated and defined PSK
	cd := iot.NewCreateDeviceRequest()
	cd.ProductId, cd.DeviceName = ptr(testProduct), ptr("single-1")
	cr, err := c.CreateDevice(cd)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.StdEncoding.DecodeString(*cr.Response.DevicePsk); err != nil || len(raw) != 16 {
		t.Fatalf("DevicePsk %q is not base64 of 16 bytes", *cr.Response.DevicePsk)
	}
	if psk, ok := e.TencentDevice(testProduct, "single-1"); !ok || psk != *cr.Response.DevicePsk {
		t.Fatalf("emulator view disagrees")
	}
	cd.DeviceName, cd.DefinedPsk = ptr("single-2"), ptr("AAECAwQFBgcICQoLDA0ODw==")
	if cr, err := c.CreateDevice(cd); err != nil || *cr.Response.DevicePsk != "AAECAwQFBgcICQoLDA0ODw==" {
		t.Fatalf("DefinedPsk: %v", err)
	}

	// CreateMultiDevice → DescribeMultiDevTask → DescribeMultiDevices
	names := []string{"a:1", "b_2", "c-3"}
	mr := iot.NewCreateMultiDeviceRequest()
	mr.ProductId, mr.DeviceNames = ptr(testProduct), ptrs(names)
	resp, err := c.CreateMultiDevice(mr)
	if err != nil {
		t.Fatal(err)
	}
	task := *resp.Response.TaskId
	tr := iot.NewDescribeMultiDevTaskRequest()
	tr.ProductId, tr.TaskId = ptr(testProduct), &task
	ts, err := c.DescribeMultiDevTask(tr)
	if err != nil || *ts.Response.TaskStatus != 2 {
		t.Fatalf("DescribeMultiDevTask: %v %v", err, ts)
	}
	dr := iot.NewDescribeMultiDevicesRequest()
	dr.ProductId, dr.TaskId, dr.Offset, dr.Limit = ptr(testProduct), &task, ptr(uint64(0)), ptr(uint64(100))
	ds, err := c.DescribeMultiDevices(dr)
	if err != nil || *ds.Response.TotalDevNum != 3 || len(ds.Response.DevicesInfo) != 3 {
		t.Fatalf("DescribeMultiDevices: %v %s", err, ds.ToJsonString())
	}
	for i, d := range ds.Response.DevicesInfo {
		if *d.DeviceName != names[i] || *d.Result != 0 {
			t.Errorf("device %d: %s", i, ds.ToJsonString())
		}
	}

	// DescribeDevice (ProductID) and DescribeDevices
	dd := iot.NewDescribeDeviceRequest()
	dd.ProductID, dd.DeviceName = ptr(testProduct), ptr("b_2")
	dv, err := c.DescribeDevice(dd)
	if err != nil || *dv.Response.DevicePsk != *ds.Response.DevicesInfo[1].DevicePsk || *dv.Response.EnableState != 1 || *dv.Response.CreateTime == 0 {
		t.Fatalf("DescribeDevice: %v %s", err, dv.ToJsonString())
	}
	ls := iot.NewDescribeDevicesRequest()
	ls.ProductId, ls.Offset, ls.Limit = ptr(testProduct), ptr(uint64(0)), ptr(uint64(10))
	lr, err := c.DescribeDevices(ls)
	if err != nil || *lr.Response.TotalCount != 5 || len(lr.Response.Devices) != 5 {
		t.Fatalf("DescribeDevices: %v %s", err, lr.ToJsonString())
	}

	// DeleteDevice
	del := iot.NewDeleteDeviceRequest()
	del.ProductId, del.DeviceName = ptr(testProduct), ptr("a:1")
	if _, err := c.DeleteDevice(del); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.TencentDevice(testProduct, "a:1"); ok {
		t.Fatal("deleted device still there")
	}
	if got := e.TencentDeviceNames(testProduct); strings.Join(got, ",") != "b_2,c-3,single-1,single-2" {
		t.Fatalf("names %v", got)
	}

	// Errors, each through the SDK.
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("m%d", i)
	}
	quota := make([]string, 100)
	for i := range quota {
		quota[i] = fmt.Sprintf("q%d", i)
	}
	errTests := []struct {
		name string
		call func() error
		code string
	}{
		{"multi unknown product", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr("NOPE"), DeviceNames: ptrs([]string{"x"})})
			return err
		}, "ResourceNotFound.ProductNotExist"},
		{"multi existing", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr(testProduct), DeviceNames: ptrs([]string{"new1", "b_2"})})
			return err
		}, "InvalidParameterValue.DeviceAlreadyExist"},
		{"multi duplicate in call", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr(testProduct), DeviceNames: ptrs([]string{"d", "d"})})
			return err
		}, "InvalidParameterValue.DeviceAlreadyExist"},
		{"multi bad name", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr(testProduct), DeviceNames: ptrs([]string{"has space"})})
			return err
		}, "InvalidParameterValue"},
		{"multi name too long", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr(testProduct), DeviceNames: ptrs([]string{strings.Repeat("x", 49)})})
			return err
		}, "InvalidParameterValue"},
		{"multi 101 names", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr(testProduct), DeviceNames: ptrs(many)})
			return err
		}, "InvalidParameterValue"},
		{"multi quota", func() error {
			_, err := c.CreateMultiDevice(&iot.CreateMultiDeviceRequest{BaseRequest: mr.BaseRequest, ProductId: ptr(testProduct), DeviceNames: ptrs(quota)})
			return err
		}, "LimitExceeded.DeviceExceedLimit"},
		{"task unknown", func() error {
			_, err := c.DescribeMultiDevTask(&iot.DescribeMultiDevTaskRequest{BaseRequest: tr.BaseRequest, ProductId: ptr(testProduct), TaskId: ptr("nope")})
			return err
		}, "ResourceNotFound.CreateMultiDeviceTaskNotExist"},
		{"task other product", func() error {
			_, err := c.DescribeMultiDevTask(&iot.DescribeMultiDevTaskRequest{BaseRequest: tr.BaseRequest, ProductId: ptr("KLMNOPQRST"), TaskId: &task})
			return err
		}, "InvalidParameterValue.TaskIDNotMatch"},
		{"multi devices limit", func() error {
			_, err := c.DescribeMultiDevices(&iot.DescribeMultiDevicesRequest{BaseRequest: dr.BaseRequest, ProductId: ptr(testProduct), TaskId: &task, Limit: ptr(uint64(101))})
			return err
		}, "InvalidParameterValue"},
		{"create existing", func() error {
			_, err := c.CreateDevice(&iot.CreateDeviceRequest{BaseRequest: cd.BaseRequest, ProductId: ptr(testProduct), DeviceName: ptr("c-3")})
			return err
		}, "InvalidParameterValue.DeviceAlreadyExist"},
		{"create bad psk", func() error {
			_, err := c.CreateDevice(&iot.CreateDeviceRequest{BaseRequest: cd.BaseRequest, ProductId: ptr(testProduct), DeviceName: ptr("p"), DefinedPsk: ptr("not base64!")})
			return err
		}, "InvalidParameterValue.DefinedPskNotBase64"},
		{"create unknown product", func() error {
			_, err := c.CreateDevice(&iot.CreateDeviceRequest{BaseRequest: cd.BaseRequest, ProductId: ptr("NOPE"), DeviceName: ptr("p")})
			return err
		}, "ResourceNotFound.ProductNotExist"},
		{"describe missing", func() error {
			_, err := c.DescribeDevice(&iot.DescribeDeviceRequest{BaseRequest: dd.BaseRequest, ProductID: ptr(testProduct), DeviceName: ptr("a:1")})
			return err
		}, "ResourceNotFound.DeviceNotExist"},
		{"describe unknown product", func() error {
			_, err := c.DescribeDevice(&iot.DescribeDeviceRequest{BaseRequest: dd.BaseRequest, ProductID: ptr("NOPE"), DeviceName: ptr("a:1")})
			return err
		}, "ResourceNotFound.ProductNotExist"},
		{"list limit too big", func() error {
			_, err := c.DescribeDevices(&iot.DescribeDevicesRequest{BaseRequest: ls.BaseRequest, ProductId: ptr(testProduct), Limit: ptr(uint64(251))})
			return err
		}, "InvalidParameterValue"},
		{"delete missing", func() error {
			_, err := c.DeleteDevice(&iot.DeleteDeviceRequest{BaseRequest: del.BaseRequest, ProductId: ptr(testProduct), DeviceName: ptr("a:1")})
			return err
		}, "ResourceNotFound.DeviceNotExist"},
	}
	for _, tt := range errTests {
		if got := errCode(tt.call()); got != tt.code {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.code)
		}
	}
}

// A task stays 0 then 1 while its time runs, refuses DescribeMultiDevices,
// reserves its names, and only then creates its devices.
func TestTaskMovesWithTime(t *testing.T) {
	clk := newClock()
	e, srv := start(t, Config{TaskDelay: 4 * time.Second, Now: clk.Now})
	c := sdk(t, srv, testID, testKey)
	mr := iot.NewCreateMultiDeviceRequest()
	mr.ProductId, mr.DeviceNames = ptr(testProduct), ptrs([]string{"t1", "t2"})
	resp, err := c.CreateMultiDevice(mr)
	if err != nil {
		t.Fatal(err)
	}
	task := resp.Response.TaskId
	status := func() uint64 {
		tr := iot.NewDescribeMultiDevTaskRequest()
		tr.ProductId, tr.TaskId = ptr(testProduct), task
		r, err := c.DescribeMultiDevTask(tr)
		if err != nil {
			t.Fatal(err)
		}
		return *r.Response.TaskStatus
	}
	results := func() error {
		dr := iot.NewDescribeMultiDevicesRequest()
		dr.ProductId, dr.TaskId = ptr(testProduct), task
		_, err := c.DescribeMultiDevices(dr)
		return err
	}
	if s := status(); s != 0 {
		t.Fatalf("status %d at start", s)
	}
	if c := errCode(results()); c != "UnauthorizedOperation.CreateMultiDeviceTaskNotFinished" {
		t.Fatalf("results before done: %s", c)
	}
	if len(e.TencentDeviceNames(testProduct)) != 0 {
		t.Fatal("devices exist before the task completed")
	}
	again := iot.NewCreateDeviceRequest()
	again.ProductId, again.DeviceName = ptr(testProduct), ptr("t1")
	if _, err := c.CreateDevice(again); errCode(err) != "InvalidParameterValue.DeviceAlreadyExist" {
		t.Fatalf("a name being created was accepted again: %v", err)
	}
	clk.Add(2 * time.Second)
	if s := status(); s != 1 {
		t.Fatalf("status %d half way", s)
	}
	clk.Add(2 * time.Second)
	if s := status(); s != 2 {
		t.Fatalf("status %d at the end", s)
	}
	if err := results(); err != nil {
		t.Fatal(err)
	}
	if got := e.TencentDeviceNames(testProduct); len(got) != 2 {
		t.Fatalf("devices %v", got)
	}
}

// 1,000 names in 10 calls come back, paged, each with its own PSK.
func TestThousandDevicesPaged(t *testing.T) {
	e, srv := start(t, Config{TaskDelay: -1})
	c := sdk(t, srv, testID, testKey)
	psks := map[string]string{}
	for call := range 10 {
		names := make([]string, 100)
		for i := range names {
			names[i] = fmt.Sprintf("dev%04d", call*100+i)
		}
		mr := iot.NewCreateMultiDeviceRequest()
		mr.ProductId, mr.DeviceNames = ptr(testProduct), ptrs(names)
		resp, err := c.CreateMultiDevice(mr)
		if err != nil {
			t.Fatal(err)
		}
		for off := uint64(0); off < 100; off += 30 { // pages of 30: 30+30+30+10
			dr := iot.NewDescribeMultiDevicesRequest()
			dr.ProductId, dr.TaskId, dr.Offset, dr.Limit = ptr(testProduct), resp.Response.TaskId, ptr(off), ptr(uint64(30))
			r, err := c.DescribeMultiDevices(dr)
			if err != nil {
				t.Fatal(err)
			}
			if want := min(30, 100-off); uint64(len(r.Response.DevicesInfo)) != want || *r.Response.TotalDevNum != 100 {
				t.Fatalf("page at %d: %d devices, total %d", off, len(r.Response.DevicesInfo), *r.Response.TotalDevNum)
			}
			for _, d := range r.Response.DevicesInfo {
				psks[*d.DeviceName] = *d.DevicePsk
			}
		}
	}
	if len(psks) != 1000 {
		t.Fatalf("%d devices", len(psks))
	}
	seen := map[string]bool{}
	for name, psk := range psks {
		if seen[psk] {
			t.Fatalf("PSK repeated (%s)", name)
		}
		seen[psk] = true
		if got, ok := e.TencentDevice(testProduct, name); !ok || got != psk {
			t.Fatalf("%s: emulator disagrees", name)
		}
	}
}

// Over the per-action limit the SDK gets RequestLimitExceeded; other actions
// keep their own budget.
func TestRateLimit(t *testing.T) {
	clk := newClock()
	_, srv := start(t, Config{RateLimit: 3, Now: clk.Now})
	c := sdk(t, srv, testID, testKey)
	var codes []string
	for range 5 {
		_, err := c.DescribeProducts(nil)
		codes = append(codes, errCode(err))
	}
	if strings.Join(codes, ",") != ",,,RequestLimitExceeded,RequestLimitExceeded" {
		t.Fatalf("codes %q", codes)
	}
	dd := iot.NewDescribeDeviceRequest()
	dd.ProductID, dd.DeviceName = ptr(testProduct), ptr("x")
	if _, err := c.DescribeDevice(dd); errCode(err) != "ResourceNotFound.DeviceNotExist" {
		t.Fatalf("another action was throttled: %v", err)
	}
	clk.Add(time.Second)
	if _, err := c.DescribeProducts(nil); err != nil {
		t.Fatalf("after a second: %v", err)
	}
}

func TestInjectFault(t *testing.T) {
	e, srv := start(t, Config{})
	c := sdk(t, srv, testID, testKey)
	e.InjectFault("DescribeProducts", 2, "InternalError")
	e.InjectFault("DescribeDevices", 1, "delay:150ms")
	for i, want := range []string{"InternalError", "InternalError", ""} {
		if _, err := c.DescribeProducts(nil); errCode(err) != want {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	ls := iot.NewDescribeDevicesRequest()
	ls.ProductId = ptr(testProduct)
	start := time.Now()
	if _, err := c.DescribeDevices(ls); err != nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("delay fault: %v after %s", err, time.Since(start))
	}
}

// Unfinished CreateMultiDevice tasks count against a limit: past it a create
// is refused with errors.go's LimitExceeded.PengingOrProcessingTasksExceedLimit
// (spelled as the SDK spells it) and creates nothing; once a task finishes the
// next create is accepted.
func TestPendingTaskLimit(t *testing.T) {
	clk := newClock()
	e, srv := start(t, Config{TaskDelay: 4 * time.Second, Now: clk.Now, MaxPendingTasks: 2})
	c := sdk(t, srv, testID, testKey)
	create := func(names ...string) error {
		mr := iot.NewCreateMultiDeviceRequest()
		mr.ProductId, mr.DeviceNames = ptr(testProduct), ptrs(names)
		_, err := c.CreateMultiDevice(mr)
		return err
	}
	for _, n := range []string{"p1", "p2"} {
		if err := create(n); err != nil {
			t.Fatal(err)
		}
	}
	if code := errCode(create("p3")); code != "LimitExceeded.PengingOrProcessingTasksExceedLimit" {
		t.Fatalf("third unfinished task: %q", code)
	}
	clk.Add(4 * time.Second)
	if err := create("p3"); err != nil {
		t.Fatalf("after the tasks finished: %v", err)
	}
	clk.Add(4 * time.Second)
	if names := e.TencentDeviceNames(testProduct); len(names) != 3 {
		t.Fatalf("devices %v: the refused call created something", names)
	}
}
