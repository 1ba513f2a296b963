package emulator

import (
	"net/http"
	"testing"
	"time"
)

// Real HTTP: the SDK with a wrong key or unknown id, and hand-built requests,
// are answered with Tencent's codes.
func TestAuthRejected(t *testing.T) {
	_, srv := start(t, Config{})

	_, err := sdk(t, srv, testID, "wrong-key").DescribeProducts(nil)
	if c := errCode(err); c != "AuthFailure.SignatureFailure" {
		t.Errorf("wrong key: %s", c)
	}
	_, err = sdk(t, srv, "AKIDunknown", testKey).DescribeProducts(nil)
	if c := errCode(err); c != "AuthFailure.SecretIdNotFound" {
		t.Errorf("unknown SecretId: %s", c)
	}
	if _, err := sdk(t, srv, testID, testKey).DescribeProducts(nil); err != nil {
		t.Fatalf("right key: %v", err)
	}

	now := time.Now()
	tests := []struct {
		name, action, version, body string
		ts                          time.Time
		mutate                      func(*http.Request)
		code                        string
	}{
		{"ok", "DescribeProducts", "2018-06-14", `{}`, now, nil, ""},
		{"old timestamp", "DescribeProducts", "2018-06-14", `{}`, now.Add(-10 * time.Minute), nil, "AuthFailure.SignatureExpire"},
		{"future timestamp", "DescribeProducts", "2018-06-14", `{}`, now.Add(10 * time.Minute), nil, "AuthFailure.SignatureExpire"},
		{"body changed", "DescribeProducts", "2018-06-14", `{}`, now, func(r *http.Request) {
			r.Body = http.NoBody
			r.ContentLength = 0
		}, "AuthFailure.SignatureFailure"},
		{"no authorization", "DescribeProducts", "2018-06-14", `{}`, now, func(r *http.Request) { r.Header.Del("Authorization") }, "AuthFailure.SignatureFailure"},
		{"garbled authorization", "DescribeProducts", "2018-06-14", `{}`, now, func(r *http.Request) {
			r.Header.Set("Authorization", "TC3-HMAC-SHA256 nonsense")
		}, "AuthFailure.InvalidAuthorization"},
		{"no timestamp", "DescribeProducts", "2018-06-14", `{}`, now, func(r *http.Request) { r.Header.Del("X-TC-Timestamp") }, "MissingParameter"},
		{"unknown action", "DescribeWidgets", "2018-06-14", `{}`, now, nil, "InvalidAction"},
		{"no action", "", "2018-06-14", `{}`, now, nil, "MissingParameter"},
		{"wrong version", "DescribeProducts", "2021-04-08", `{}`, now, nil, "NoSuchVersion"},
		{"no version", "DescribeProducts", "", `{}`, now, nil, "MissingParameter"},
		{"not JSON", "DescribeProducts", "2018-06-14", `{"Limit":`, now, nil, "InvalidParameter"},
		{"ProductId in DescribeDevice", "DescribeDevice", "2018-06-14", `{"ProductId":"ABCDEFGHIJ","DeviceName":"x"}`, now, nil, "MissingParameter"},
		{"ProductID in DescribeDevice", "DescribeDevice", "2018-06-14", `{"ProductID":"ABCDEFGHIJ","DeviceName":"x"}`, now, nil, "ResourceNotFound.DeviceNotExist"},
		{"wrong type", "DescribeDevices", "2018-06-14", `{"ProductId":"ABCDEFGHIJ","Limit":"ten"}`, now, nil, "InvalidParameter"},
	}
	for _, tt := range tests {
		resp := rawCall(t, srv, tt.action, tt.version, tt.body, tt.ts, testID, testKey, tt.mutate)
		if got := rawCode(resp); got != tt.code {
			t.Errorf("%s: code %q, want %q (%v)", tt.name, got, tt.code, resp)
		}
	}
}

// Requests that are no vendor's API get a plain 400, not a panic or a 200.
func TestNotAnAPIRequest(t *testing.T) {
	_, srv := start(t, Config{})
	resp, err := http.Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
