package tencent

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

const (
	testID      = "AKIDclient0123456789"
	testKey     = "client-secret-key-0123456789"
	testProduct = "ABCDEFGHIJ"
)

// setup runs the emulator on 127.0.0.1 and a client pointed at it.
func setup(t testing.TB, cfg emulator.Config) (*emulator.Emulator, *Client, string) {
	t.Helper()
	cfg.SecretID, cfg.SecretKey = testID, testKey
	if cfg.Products == nil {
		cfg.Products = []string{testProduct}
	}
	e, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() { srv.Close(); e.Close() })
	c, err := New(Config{SecretID: testID, SecretKey: testKey, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c.retry.base = 20 * time.Millisecond // keep tests quick; the policy's shape is the same
	return e, c, srv.URL
}

// testClock is a clock that moves only when told to.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return out
}

func waitDone(t testing.TB, c *Client, task string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ok, err := c.BatchDone(ctx, testProduct, task)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
	}
	t.Fatal("task never finished")
}

// The whole Platform against the emulator.
func TestPlatformFlow(t *testing.T) {
	// The emulator's clock stands still until the test moves it: a busy
	// machine must not finish the task before the first poll.
	clk := &testClock{t: time.Now()}
	e, c, _ := setup(t, emulator.Config{TaskDelay: 50 * time.Millisecond, RateLimit: -1, Now: clk.Now})
	ctx := context.Background()
	if c.Name() != "tencent" || c.MaxBatch() != 100 || c.Region() != "ap-guangzhou" {
		t.Fatalf("identity %s %d %s", c.Name(), c.MaxBatch(), c.Region())
	}

	task, err := c.StartBatch(ctx, testProduct, names("dev", 100))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.BatchDone(ctx, testProduct, task); err != nil || ok {
		t.Fatalf("done at once: %v %v", ok, err)
	}
	clk.Add(time.Second)
	waitDone(t, c, task)
	res, err := c.BatchResults(ctx, testProduct, task)
	if err != nil || len(res) != 100 {
		t.Fatalf("results: %d %v", len(res), err)
	}
	for _, r := range res {
		if psk, ok := e.TencentDevice(testProduct, r.DeviceName); !ok || psk != r.DeviceSecret || r.Err != "" {
			t.Fatalf("%s: result disagrees with the emulator", r.DeviceName)
		}
	}

	d, err := c.Device(ctx, testProduct, "dev0042")
	if err != nil || d.DeviceName != "dev0042" || d.DeviceSecret != res[42].DeviceSecret || !d.Enabled || d.Online || d.CreatedAt == 0 {
		t.Fatalf("Device: %+v %v", d, err)
	}
	if _, err := c.Device(ctx, testProduct, "nope"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("missing device: %v", err)
	}

	// 300 devices: Devices pages (250 + 50).
	task2, err := c.StartBatch(ctx, testProduct, names("more", 100))
	if err != nil {
		t.Fatal(err)
	}
	task3, err := c.StartBatch(ctx, testProduct, names("most", 100))
	if err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	waitDone(t, c, task2)
	waitDone(t, c, task3)
	all, err := c.Devices(ctx, testProduct)
	if err != nil || len(all) != 300 {
		t.Fatalf("Devices: %d %v", len(all), err)
	}
	seen := map[string]bool{}
	for _, d := range all {
		if seen[d.DeviceName] || d.DeviceSecret == "" {
			t.Fatalf("Devices: %s repeated or without secret", d.DeviceName)
		}
		seen[d.DeviceName] = true
	}

	if err := c.DeleteDevice(ctx, testProduct, "dev0042"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.TencentDevice(testProduct, "dev0042"); ok {
		t.Fatal("not deleted")
	}
	if err := c.DeleteDevice(ctx, testProduct, "dev0042"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("delete missing: %v", err)
	}

	// Refusals wrap registry.ErrRefused and keep the cloud's code.
	_, err = c.StartBatch(ctx, testProduct, []string{"dev0001"})
	if !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), "InvalidParameterValue.DeviceAlreadyExist") {
		t.Fatalf("existing name: %v", err)
	}
	_, err = c.StartBatch(ctx, "NOPRODUCT", []string{"x"})
	if !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), "ResourceNotFound.ProductNotExist") {
		t.Fatalf("unknown product: %v", err)
	}
	for _, bad := range [][]string{nil, names("x", 101), {"has space"}} {
		if _, err := c.StartBatch(ctx, testProduct, bad); !errors.Is(err, registry.ErrRefused) {
			t.Fatalf("%d names refused locally? %v", len(bad), err)
		}
	}
}

// The SDK directly, for actions the Platform has no method for.
func TestSDKDirect(t *testing.T) {
	_, _, url := setup(t, emulator.Config{RateLimit: -1})
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint, cpf.HttpProfile.Scheme = strings.TrimPrefix(url, "http://"), "HTTP"
	api, _ := iot.NewClient(common.NewCredential(testID, testKey), "ap-guangzhou", cpf)
	p, err := api.DescribeProducts(iot.NewDescribeProductsRequest())
	if err != nil || *p.Response.TotalCount != 1 || *p.Response.Products[0].ProductId != testProduct {
		t.Fatalf("DescribeProducts: %v", err)
	}
	req := iot.NewCreateDeviceRequest()
	product, name := testProduct, "solo"
	req.ProductId, req.DeviceName = &product, &name
	r, err := api.CreateDevice(req)
	if err != nil || r.Response.DevicePsk == nil || *r.Response.DevicePsk == "" {
		t.Fatalf("CreateDevice: %v", err)
	}
}

// A wrong key: an error that says so, names the variables, and hides the key.
func TestAuthError(t *testing.T) {
	_, _, url := setup(t, emulator.Config{RateLimit: -1})
	c, err := New(Config{SecretID: testID, SecretKey: "not-the-key-xyz", Endpoint: url})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Devices(context.Background(), testProduct)
	if !errors.Is(err, ErrAuth) || !errors.Is(err, registry.ErrRefused) {
		t.Fatalf("not an auth error: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{EnvSecretID, EnvSecretKey, "AuthFailure.SignatureFailure"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %s: %s", want, msg)
		}
	}
	if strings.Contains(msg, "not-the-key-xyz") {
		t.Fatal("the key is in the error")
	}
	c, _ = New(Config{SecretID: "AKIDother", SecretKey: testKey, Endpoint: url})
	if _, err := c.Device(context.Background(), testProduct, "x"); !errors.Is(err, ErrAuth) ||
		!strings.Contains(err.Error(), "AuthFailure.SecretIdNotFound") {
		t.Fatalf("unknown id: %v", err)
	}
}

// Throttled by the emulator, the client backs off and gets through.
func TestRetriesThroughRateLimit(t *testing.T) {
	_, c, _ := setup(t, emulator.Config{RateLimit: 4, TaskDelay: -1})
	c.retry = defaultRetry // the real policy: 10 calls at 4 a second need it
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.StartBatch(ctx, testProduct, names(fmt.Sprintf("g%d-", i), 5))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a throttled call failed: %v", err)
		}
	}

	// With retries off, the same load shows the code the client retried on.
	c.retry.attempts = 1
	var throttled bool
	for i := range 12 {
		if _, err := c.Device(ctx, testProduct, fmt.Sprintf("g0-%04d", i%5)); err != nil {
			if !strings.Contains(err.Error(), "RequestLimitExceeded") {
				t.Fatal(err)
			}
			throttled = true
		}
	}
	if !throttled {
		t.Fatal("the emulator never throttled, so the retry test proved nothing")
	}
}

func TestRetriesThroughInternalError(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{RateLimit: -1, TaskDelay: -1})
	ctx := context.Background()
	e.InjectFault("CreateMultiDevice", 2, "InternalError")
	e.InjectFault("DescribeMultiDevices", 3, "InternalError")
	task, err := c.StartBatch(ctx, testProduct, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.BatchResults(ctx, testProduct, task); err != nil || len(res) != 2 {
		t.Fatalf("%v %v", res, err)
	}
	// A code that is not transient is not retried.
	e.InjectFault("DescribeDevice", 1, "ResourceNotFound.ProductNotExist")
	if _, err := c.Device(ctx, testProduct, "a"); err == nil || !errors.Is(err, registry.ErrRefused) {
		t.Fatalf("refusal retried away: %v", err)
	}
	// Bounded: a fault that outlasts the attempts is reported.
	e.InjectFault("DescribeDevices", 100, "InternalError")
	c.retry.attempts = 3
	if _, err := c.Devices(ctx, testProduct); err == nil || !strings.Contains(err.Error(), "InternalError") {
		t.Fatalf("unbounded retries? %v", err)
	}
}

// A cancelled context stops the backoff at once.
func TestRetryHonoursContext(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{RateLimit: -1})
	e.InjectFault("DescribeDevices", 100, "RequestLimitExceeded")
	c.retry = retryPolicy{attempts: 100, base: time.Second, max: time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Devices(ctx, testProduct)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
}

// A network error on a create is not repeated (the task may exist), but a
// read repeats it.
func TestNetworkErrors(t *testing.T) {
	c, err := New(Config{SecretID: testID, SecretKey: testKey, Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	c.retry = retryPolicy{attempts: 3, base: time.Millisecond, max: time.Millisecond}
	var calls int
	err = c.do(context.Background(), "X", creating, func() error {
		calls++
		_, err := c.api.DescribeProducts(nil)
		return err
	})
	if calls != 1 || err == nil || errors.Is(err, registry.ErrRefused) {
		t.Fatalf("create: %d calls, %v", calls, err)
	}
	calls = 0
	err = c.do(context.Background(), "X", idempotent, func() error {
		calls++
		_, err := c.api.DescribeProducts(nil)
		return err
	})
	if calls != 3 || err == nil {
		t.Fatalf("read: %d calls, %v", calls, err)
	}
}

func TestValidateName(t *testing.T) {
	c, _ := New(Config{SecretID: "a", SecretKey: "b"})
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"AZaz09:_-", true}, {strings.Repeat("x", 48), true},
		{"", false}, {strings.Repeat("x", 49), false}, {"a b", false}, {"a.b", false}, {"a/b", false}, {"é", false},
	} {
		err := c.ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("%q: %v", tt.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "[a-zA-Z0-9:_-]{1,48}") {
			t.Errorf("message does not name the rule: %v", err)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		id, key, region string
		wantErr         []string
		wantRegion      string
	}{
		{"AKID", "SeCrEt-1", "", nil, "ap-guangzhou"},
		{"AKID", "SeCrEt-1", "ap-shanghai", nil, "ap-shanghai"},
		{"", "SeCrEt-1", "", []string{EnvSecretID}, ""},
		{"AKID", "", "", []string{EnvSecretKey, "export"}, ""},
		{"", "SeCrEtKeY-zz9", "", []string{EnvSecretID}, ""},
		{"", "", "", []string{EnvSecretID, EnvSecretKey}, ""},
	}
	for _, tt := range tests {
		t.Setenv(EnvSecretID, tt.id)
		t.Setenv(EnvSecretKey, tt.key)
		t.Setenv(EnvRegion, tt.region)
		c, err := ConfigFromEnv("http://127.0.0.1:8443")
		if tt.wantErr == nil {
			if err != nil || c.Region != tt.wantRegion || c.Endpoint != "http://127.0.0.1:8443" {
				t.Errorf("%+v: %v %+v", tt, err, c.Region)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error", tt)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
		if tt.key != "" && strings.Contains(err.Error(), tt.key) {
			t.Errorf("error shows the key")
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tt := range []struct {
		in, host, scheme string
		ok               bool
	}{
		{"http://127.0.0.1:8443", "127.0.0.1:8443", "HTTP", true},
		{"HTTP://127.0.0.1:8443/", "127.0.0.1:8443", "HTTP", true},
		{"https://iot.example.com", "iot.example.com", "HTTPS", true},
		{"iotcloud.tencentcloudapi.com", "iotcloud.tencentcloudapi.com", "HTTPS", true},
		{"ftp://x", "", "", false},
		{"http://x/path", "", "", false},
		{"http://", "", "", false},
	} {
		host, scheme, err := parseEndpoint(tt.in)
		if (err == nil) != tt.ok || host != tt.host || scheme != tt.scheme {
			t.Errorf("%q: %q %q %v", tt.in, host, scheme, err)
		}
	}
}

// Too many unfinished tasks: the create waits for the platform to finish one
// and then goes through, creating each name once; a limit that outlasts the
// waiting is a refusal (nothing was created, so create.go closes its journal
// entry), not an unknown outcome.
func TestBacksOffOnPendingTaskLimit(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{RateLimit: -1, TaskDelay: 300 * time.Millisecond, MaxPendingTasks: 1})
	c.pending = retryPolicy{attempts: 40, base: 20 * time.Millisecond, max: 100 * time.Millisecond}
	ctx := context.Background()
	first, err := c.StartBatch(ctx, testProduct, []string{"w1"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := c.StartBatch(ctx, testProduct, []string{"w2"})
	if err != nil {
		t.Fatalf("the create was not waited through: %v", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("second create accepted after %v: the limit was not hit, the test proves nothing", waited)
	}
	waitDone(t, c, first)
	waitDone(t, c, second)
	if got := e.TencentDeviceNames(testProduct); len(got) != 2 {
		t.Fatalf("devices %v", got)
	}

	c.pending = retryPolicy{attempts: 3, base: time.Millisecond, max: time.Millisecond}
	if _, err := c.StartBatch(ctx, testProduct, []string{"w3"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.StartBatch(ctx, testProduct, []string{"w4"})
	if !errors.Is(err, registry.ErrRefused) || !strings.Contains(err.Error(), "LimitExceeded.PengingOrProcessingTasksExceedLimit") {
		t.Fatalf("limit outlasting the waits: %v", err)
	}
}
