package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	sdkerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

const (
	testID      = "AKIDtest0123456789"
	testKey     = "test-secret-key-0123456789"
	testProduct = "ABCDEFGHIJ"
)

// clock is a settable clock that starts at the real time, so the SDK's real
// timestamps stay within the emulator's 300 s window.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start runs an emulator behind a real HTTP server on 127.0.0.1.
func start(t testing.TB, cfg Config) (*Emulator, *httptest.Server) {
	t.Helper()
	if cfg.SecretID == "" {
		cfg.SecretID, cfg.SecretKey = testID, testKey
	}
	if cfg.Products == nil {
		cfg.Products = []string{testProduct}
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = -1
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(func() { srv.Close(); e.Close() })
	return e, srv
}

// sdk is the official SDK pointed at srv.
func sdk(t testing.TB, srv *httptest.Server, id, key string) *iot.Client {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(srv.URL, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	c, err := iot.NewClient(common.NewCredential(id, key), "ap-guangzhou", cpf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func errCode(err error) string {
	var e *sdkerr.TencentCloudSDKError
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "non-SDK error: " + err.Error()
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

func ptrs(names []string) []*string {
	out := make([]*string, len(names))
	for i := range names {
		out[i] = &names[i]
	}
	return out
}

// rawCall sends a hand-built, hand-signed request and returns the decoded
// Response object. ts is the X-TC-Timestamp; mutate may spoil the request after signing.
func rawCall(t testing.TB, srv *httptest.Server, action, version string, body string, ts time.Time,
	id, key string, mutate func(*http.Request)) map[string]any {
	t.Helper()
	req, err := http.NewRequest("POST", srv.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-TC-Action", action)
	req.Header.Set("X-TC-Version", version)
	req.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	signed := []string{"content-type", "host"}
	in := tc3Input{Method: "POST", Host: req.Host, Header: req.Header, Body: []byte(body)}
	date := ts.UTC().Format("2006-01-02")
	sig := tc3Signature(key, date, "iotcloud", tc3StringToSign(strconv.FormatInt(ts.Unix(), 10), date, "iotcloud", tc3CanonicalRequest(in, signed)))
	req.Header.Set("Authorization", tc3Authorization(id, date, "iotcloud", signed, sig))
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, raw)
	}
	var out struct{ Response map[string]any }
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("bad JSON %s: %v", raw, err)
	}
	if id, _ := out.Response["RequestId"].(string); len(id) != 36 {
		t.Fatalf("no RequestId in %s", raw)
	}
	return out.Response
}

func rawCode(resp map[string]any) string {
	e, _ := resp["Error"].(map[string]any)
	c, _ := e["Code"].(string)
	return c
}
