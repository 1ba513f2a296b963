package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	alisdk "github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	aliiot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
)

const (
	aliTestID      = "LTAItestAccessKey0123"
	aliTestSecret  = "aliyun-test-secret-0123456789"
	aliTestProduct = "a1TestProdKey"
)

// aliStart runs an emulator with an Aliyun key pair and product behind a real
// HTTP server on 127.0.0.1.
func aliStart(t testing.TB, cfg Config) (*Emulator, *httptest.Server) {
	t.Helper()
	if cfg.AliyunAccessKeyID == "" {
		cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = aliTestID, aliTestSecret
	}
	if cfg.AliyunProducts == nil {
		cfg.AliyunProducts = []string{aliTestProduct}
	}
	return start(t, cfg)
}

// aliSDK is the official Aliyun SDK's Iot client pointed at srv; requests
// must go through aliReq to get srv's host and plain HTTP.
func aliSDK(t testing.TB, id, secret string) *aliiot.Client {
	t.Helper()
	cfg := alisdk.NewConfig()
	cfg.Scheme = "HTTP"
	c, err := aliiot.NewClientWithOptions("cn-shanghai", cfg, credentials.NewAccessKeyCredential(id, secret))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// aliReq points an SDK request at srv.
func aliReq(srv *httptest.Server, r *requests.RpcRequest) {
	r.Domain = strings.TrimPrefix(srv.URL, "http://")
	r.Scheme = "http"
	r.AcceptFormat = "JSON"
}

var nonceSeq atomic.Int64

// aliParams are the common parameters of a hand-built RPC request.
func aliParams(action string, ts time.Time, extra map[string]string) map[string]string {
	p := map[string]string{
		"Action": action, "Version": aliyunVersion, "Format": "JSON", "AccessKeyId": aliTestID,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
		"SignatureNonce": "nonce-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatInt(nonceSeq.Add(1), 10),
		"Timestamp":      ts.UTC().Format(aliyunTimeLayout), "RegionId": "cn-shanghai",
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// aliSignParams adds Signature computed with secret.
func aliSignParams(method string, p map[string]string, secret string) {
	delete(p, "Signature")
	p["Signature"] = aliyunSignature(secret, aliyunStringToSign(method, p))
}

// aliRaw sends p (already signed) by GET in the query, or by POST in a form
// body, and returns the HTTP status and the decoded answer.
func aliRaw(t testing.TB, srv *httptest.Server, method string, p map[string]string) (int, map[string]any) {
	t.Helper()
	v := url.Values{}
	for k, x := range p {
		v.Set(k, x)
	}
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, srv.URL+"/?"+v.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, srv.URL+"/", strings.NewReader(v.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("bad JSON %s: %v", raw, err)
		}
		if id, _ := out["RequestId"].(string); len(id) != 36 {
			t.Fatalf("no RequestId in %s", raw)
		}
	} else {
		out["raw"] = string(raw)
	}
	return resp.StatusCode, out
}

func aliCode(out map[string]any) string {
	c, _ := out["Code"].(string)
	return c
}
