package aliyun

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
)

const (
	testID      = "LTAIclientTest01234567"
	testSecret  = "client-test-secret-0123456789"
	testProduct = "a1ClientProd"
)

// setup runs the emulator on 127.0.0.1 and a client pointed at it.
func setup(t testing.TB, cfg emulator.Config) (*emulator.Emulator, *Client, string) {
	t.Helper()
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair() // Tencent's pair, unused here
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = testID, testSecret
	if cfg.AliyunProducts == nil {
		cfg.AliyunProducts = []string{testProduct}
	}
	e, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() { srv.Close(); e.Close() })
	c, err := New(Config{AccessKeyID: testID, AccessKeySecret: testSecret, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c.retry.base = 20 * time.Millisecond // keep tests quick; the policy's shape is the same
	return e, c, srv.URL
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%05d", prefix, i)
	}
	return out
}

func waitDone(t testing.TB, c *Client, task string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, err := c.BatchDone(context.Background(), testProduct, task)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
	}
	t.Fatal("application never finished")
}

// The whole Platform against the emulator, every call through the official SDK.
func TestPlatformFlow(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{TaskDelay: 50 * time.Millisecond, RateLimit: -1})
	ctx := context.Background()
	if c.Name() != "aliyun" || c.MaxBatch() != 10000 || c.Region() != "cn-shanghai" {
		t.Fatalf("identity %s %d %s", c.Name(), c.MaxBatch(), c.Region())
	}

	task, err := c.StartBatch(ctx, testProduct, names("dev-", 120))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strconv.ParseInt(task, 10, 64); err != nil {
		t.Fatalf("task id %q is not an ApplyId", task)
	}
	if ok, err := c.BatchDone(ctx, testProduct, task); err != nil || ok {
		t.Fatalf("done at once: %v %v", ok, err)
	}
	waitDone(t, c, task)
	res, err := c.BatchResults(ctx, testProduct, task)
	if err != nil || len(res) != 120 {
		t.Fatalf("results: %d %v", len(res), err)
	}
	seen := map[string]bool{}
	for _, r := range res {
		if s, ok := e.AliyunDevice(testProduct, r.DeviceName); !ok || s != r.DeviceSecret || r.Err != "" || len(s) != 32 {
			t.Fatalf("%s: result disagrees with the emulator", r.DeviceName)
		}
		seen[r.DeviceName] = true
	}
	if len(seen) != 120 {
		t.Fatalf("%d distinct names in 120 results (3 pages of 50)", len(seen))
	}

	d, err := c.Device(ctx, testProduct, "dev-00042")
	if err != nil || d.DeviceName != "dev-00042" || d.DeviceSecret != res[42].DeviceSecret || !d.Enabled || d.Online || d.CreatedAt == 0 {
		t.Fatalf("Device: %+v %v", d, err)
	}
	if _, err := c.Device(ctx, testProduct, "nope-nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("missing device: %v", err)
	}
	all, err := c.Devices(ctx, testProduct)
	if err != nil || len(all) != 120 {
		t.Fatalf("Devices: %d %v", len(all), err)
	}
	if err := c.DeleteDevice(ctx, testProduct, "dev-00001"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteDevice(ctx, testProduct, "dev-00001"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}

	// Existing names fail the check: ErrExists, refused, nothing created.
	_, err = c.StartBatch(ctx, testProduct, []string{"dev-00002", "brand-new"})
	if !errors.Is(err, registry.ErrExists) || !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), "dev-00002") {
		t.Fatalf("existing name: %v", err)
	}
	if _, ok := e.AliyunDevice(testProduct, "brand-new"); ok {
		t.Fatal("a refused application created a device")
	}
	// Bad names are refused before any call.
	before := c.Calls()
	for _, bad := range [][]string{{"abc"}, {"has space"}, {"dup-1", "dup-1"}, nil} {
		if _, err := c.StartBatch(ctx, testProduct, bad); !errors.Is(err, registry.ErrRefused) {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	if c.Calls() != before {
		t.Fatal("a locally refused batch called the cloud")
	}
	// An unknown product is the cloud's refusal.
	if _, err := c.StartBatch(ctx, "a1Missing", []string{"dev-x-1"}); !errors.Is(err, registry.ErrRefused) || code(err) != "iot.prod.NotExistedProduct" {
		t.Fatalf("unknown product: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	c := &Client{}
	for name, ok := range map[string]bool{
		"abcd": true, "a_b-c@d.e:f": true, strings.Repeat("x", 32): true, "0123": true,
		"abc": false, strings.Repeat("x", 33): false, "has space": false, "slash/no": false, "é-accent": false, "": false, "a,bc": false,
	} {
		if err := c.ValidateName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
}

// A registration whose answer was lost is not taken for a refusal: the
// repeat is refused by the cloud, the status says CREATE, and register
// reports success. An ApplyId that was checked but never registered is
// registered by BatchDone.
func TestRegistrationSafety(t *testing.T) {
	e, c, url := setup(t, emulator.Config{TaskDelay: 50 * time.Millisecond, RateLimit: -1})
	ctx := context.Background()
	sdk := rawSDK(t)
	check := func(names ...string) int64 {
		r := iot.CreateBatchCheckDeviceNamesRequest()
		aim(url, r.RpcRequest)
		r.ProductKey, r.DeviceName = testProduct, &names
		resp, err := sdk.BatchCheckDeviceNames(r)
		if err != nil || !resp.Success {
			t.Fatal(err, resp)
		}
		return resp.Data.ApplyId
	}
	id := check("lost-1", "lost-2")
	if st, err := c.waitCheck(ctx, testProduct, id); err != nil || st.Status != stCheckSuccess {
		t.Fatal(st, err)
	}
	if err := c.register(ctx, testProduct, id); err != nil {
		t.Fatal(err)
	}
	// The same call again, as a retry after a lost answer would send it.
	if err := c.register(ctx, testProduct, id); err != nil {
		t.Fatalf("repeat of an accepted registration: %v", err)
	}
	waitDone(t, c, strconv.FormatInt(id, 10))

	// Checked, never registered, yet journalled: BatchDone finishes the job.
	orphan := check("orphan-1", "orphan-2")
	waitDone(t, c, strconv.FormatInt(orphan, 10))
	if _, ok := e.AliyunDevice(testProduct, "orphan-2"); !ok {
		t.Fatal("BatchDone did not register a checked application")
	}

	// A check that fails (names taken) is an error from BatchDone.
	failed := check("lost-1")
	time.Sleep(100 * time.Millisecond)
	if _, err := c.BatchDone(ctx, testProduct, strconv.FormatInt(failed, 10)); !errors.Is(err, registry.ErrExists) {
		t.Fatalf("CHECK_FAILED: %v", err)
	}
	if _, err := c.BatchDone(ctx, testProduct, "not-a-number"); !errors.Is(err, registry.ErrRefused) {
		t.Fatalf("bad task id: %v", err)
	}
}

// Throttling is retried with backoff until the call goes through; the
// client's own pacing is off here so the cloud's limit is what bites.
func TestThrottlingRetried(t *testing.T) {
	_, c, _ := setup(t, emulator.Config{TaskDelay: -1, RateLimit: 2})
	c.pace = nil
	ctx := context.Background()
	task, err := c.StartBatch(ctx, testProduct, names("thr-", 5))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		if _, err := c.Device(ctx, testProduct, fmt.Sprintf("thr-%05d", i%5)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if ok, err := c.BatchDone(ctx, testProduct, task); err != nil || !ok {
		t.Fatal(ok, err)
	}
	// Cancelling the context stops the retries.
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	var last error
	for i := 0; i < 10 && last == nil; i++ {
		_, last = c.Device(cctx, testProduct, "thr-00000")
	}
	if !errors.Is(last, context.DeadlineExceeded) {
		t.Fatalf("context: %v", last)
	}
}

// Wrong keys name the variables to fix and never show the secret.
func TestAuthErrors(t *testing.T) {
	_, _, url := setup(t, emulator.Config{RateLimit: -1})
	ctx := context.Background()
	for _, cfg := range []Config{
		{AccessKeyID: testID, AccessKeySecret: "wrong-secret-value", Endpoint: url},
		{AccessKeyID: "LTAIunknownKey", AccessKeySecret: testSecret, Endpoint: url},
	} {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Device(ctx, testProduct, "abcd")
		if !errors.Is(err, ErrAuth) || !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), EnvAccessKeySecret) {
			t.Fatalf("%s: %v", cfg.AccessKeyID, err)
		}
		if strings.Contains(err.Error(), cfg.AccessKeySecret) {
			t.Fatal("error shows the secret")
		}
	}

	t.Setenv(EnvAccessKeyID, "LTAIx")
	t.Setenv(EnvAccessKeySecret, "")
	t.Setenv(EnvRegion, "")
	if _, err := ConfigFromEnv(""); err == nil || !strings.Contains(err.Error(), EnvAccessKeySecret) || strings.Contains(err.Error(), EnvAccessKeyID+" and") {
		t.Fatalf("missing secret: %v", err)
	}
	t.Setenv(EnvAccessKeySecret, "s")
	cfg, err := ConfigFromEnv("http://127.0.0.1:1")
	if err != nil || cfg.Region != DefaultRegion || cfg.Endpoint != "http://127.0.0.1:1" {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, bad := range []string{"ftp://x", "http://h/path", "http://"} {
		if _, err := New(Config{AccessKeyID: "a", AccessKeySecret: "b", Endpoint: bad}); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
	// No endpoint: the cloud, by region, over HTTPS.
	c, err := New(Config{AccessKeyID: "a", AccessKeySecret: "b", Region: "cn-hangzhou"})
	if err != nil || c.domain != "" || c.scheme != "HTTPS" || c.Region() != "cn-hangzhou" {
		t.Fatalf("cloud config: %+v %v", c, err)
	}
}

// 10,001 names through provision.Create: two applications (10,000 + 1), all
// created, none twice; a rerun creates nothing.
func TestCreate10001(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{TaskDelay: 100 * time.Millisecond, StateDir: t.TempDir()})
	l, err := ledger.Open(filepath.Join(t.TempDir(), "iotburn.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	all := names("sn-", 10001)
	start := time.Now()
	res, err := provision.Create(context.Background(), provision.CreateOptions{Platform: c, Ledger: l, Product: testProduct, Names: all})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10,001 devices in %v, %d API calls", time.Since(start).Round(time.Millisecond), c.Calls())
	if res.Calls != 2 || res.Created != 10001 || len(res.Failed) != 0 {
		t.Fatalf("result %+v", res)
	}
	if got := len(e.AliyunDeviceNames(testProduct)); got != 10001 {
		t.Fatalf("%d devices on the platform", got)
	}
	n := 0
	if err := l.Credentials("aliyun", testProduct, func(cr registry.Credential) error {
		n++
		if s, ok := e.AliyunDevice(testProduct, cr.DeviceName); !ok || s != cr.DeviceSecret || cr.Region != "cn-shanghai" {
			return fmt.Errorf("%s: ledger and platform disagree", cr.DeviceName)
		}
		return nil
	}); err != nil || n != 10001 {
		t.Fatalf("ledger: %d %v", n, err)
	}
	again, err := provision.Create(context.Background(), provision.CreateOptions{Platform: c, Ledger: l, Product: testProduct, Names: all})
	if err != nil || again.Calls != 0 || again.Skipped != 10001 {
		t.Fatalf("rerun: %+v %v", again, err)
	}
}

// A forbidden character is refused by ValidateName, with its line number.
func TestReadNamesForbidden(t *testing.T) {
	c := &Client{}
	_, err := provision.ReadNames(strings.NewReader("DeviceName\nsn-0001\nsn-0002\nsn#0003\nsn-0004\n"), c.ValidateName)
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "sn#0003") {
		t.Fatalf("%v", err)
	}
	got, err := provision.ReadNames(strings.NewReader("sn-0001\nsn@0002.a:b_c\n"), c.ValidateName)
	if err != nil || len(got) != 2 {
		t.Fatal(got, err)
	}
}

// rawSDK is the official SDK, for actions the client has no method for.
func rawSDK(t testing.TB) *iot.Client {
	t.Helper()
	c, err := New(Config{AccessKeyID: testID, AccessKeySecret: testSecret, Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	cn := <-c.pool
	return cn.api
}

func aim(url string, r *requests.RpcRequest) {
	r.Domain, r.Scheme, r.AcceptFormat = strings.TrimPrefix(url, "http://"), "HTTP", "JSON"
}
