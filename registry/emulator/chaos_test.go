package emulator

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseChaos(t *testing.T) {
	c, err := ParseChaos("5xx=0.05,latency=200ms,throttle=0.02,drop-conn=0.01,seed=3")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Chaos{Err5xx: 0.05, Latency: 200 * time.Millisecond, Throttle: 0.02, DropConn: 0.01, Seed: 3}); c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	for _, bad := range []string{"5xx=1.5", "latency=-1s", "flood=1", "5xx"} {
		if _, err := ParseChaos(bad); err == nil {
			t.Errorf("ParseChaos(%q) accepted", bad)
		}
	}
}

// Each fault as the client sees it: a gateway's 503 that is not the
// vendor's JSON, the vendor's own throttling code, a connection closed
// with no answer.
func TestChaosAnswers(t *testing.T) {
	id, key := NewKeyPair()
	e, err := New(Config{StateDir: t.TempDir(), Products: []string{"ABCDEFGHIJ"}, SecretID: id, SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	req := func(h http.Handler) (*http.Response, error) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		r, _ := http.NewRequest("POST", srv.URL, strings.NewReader("{}"))
		r.Header.Set("X-TC-Action", "DescribeDevice")
		return http.DefaultClient.Do(r)
	}
	resp, err := req(e.WithChaos(Chaos{Err5xx: 1}))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(body), "Response") {
		t.Errorf("5xx: %d %q", resp.StatusCode, body)
	}
	if _, err := req(e.WithChaos(Chaos{DropConn: 1})); err == nil {
		t.Error("drop-conn: the request got an answer")
	}
	// Throttling: a signed request gets Tencent's own RequestLimitExceeded
	// (the API 3.0 common error), as from its rate limiter.
	srv := httptest.NewServer(e.WithChaos(Chaos{Throttle: 1}))
	defer srv.Close()
	got := rawCall(t, srv, "DescribeDevice", "2018-06-14", `{"ProductID":"ABCDEFGHIJ","DeviceName":"x"}`, time.Now(), id, key, nil)
	if code := rawCode(got); code != "RequestLimitExceeded" {
		t.Errorf("throttle: code %q, want RequestLimitExceeded", code)
	}
}
