package emulator

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	aliiot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	paho "github.com/eclipse/paho.mqtt.golang"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry/devauth"
)

// drStart runs an emulator serving both vendors over HTTP and MQTT on
// 127.0.0.1, tasks instant, no rate limits.
func drStart(t testing.TB, cfg Config) (e *Emulator, srv *httptest.Server, mqttAddr string) {
	t.Helper()
	if cfg.AliyunAccessKeyID == "" {
		cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = aliTestID, aliTestSecret
	}
	if cfg.AliyunProducts == nil {
		cfg.AliyunProducts = []string{aliTestProduct}
	}
	if cfg.TaskDelay == 0 {
		cfg.TaskDelay = -1
	}
	e, srv = start(t, cfg)
	addr, err := e.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || e.MQTTAddr() != addr {
		t.Fatalf("broker on %q", addr)
	}
	return e, srv, addr
}

func mustSecret(t testing.TB, e *Emulator, platform, product string) string {
	t.Helper()
	s, ok := e.ProductSecret(platform, product)
	if !ok || s == "" {
		t.Fatalf("no ProductSecret for %s %s", platform, product)
	}
	return s
}

// tcCreate creates Tencent devices through the official SDK.
func tcCreate(t testing.TB, srv *httptest.Server, names ...string) {
	t.Helper()
	c := sdk(t, srv, testID, testKey)
	for _, n := range names {
		r := iot.NewCreateDeviceRequest()
		r.ProductId, r.DeviceName = ptr(testProduct), ptr(n)
		if _, err := c.CreateDevice(r); err != nil {
			t.Fatal(err)
		}
	}
}

// aliCreateDevices creates Aliyun devices through the official SDK and returns
// their DeviceSecrets.
func aliCreateDevices(t testing.TB, srv *httptest.Server, names ...string) []string {
	t.Helper()
	c := aliSDK(t, aliTestID, aliTestSecret)
	var secrets []string
	for _, n := range names {
		r := aliiot.CreateRegisterDeviceRequest()
		aliReq(srv, r.RpcRequest)
		r.ProductKey, r.DeviceName = aliTestProduct, n
		resp, err := c.RegisterDevice(r)
		if err != nil || !resp.Success {
			t.Fatalf("RegisterDevice %s: %v %+v", n, err, resp)
		}
		secrets = append(secrets, resp.Data.DeviceSecret)
	}
	return secrets
}

// postRaw sends a request and returns the raw answer body.
func postRaw(t testing.TB, url string, body []byte, hdr http.Header) []byte {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
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
	return raw
}

// tcDynRegRaw posts a /device/register request signed (by devauth) for the
// emulator's host and returns the Response object as answered.
func tcDynRegRaw(t testing.TB, srv *httptest.Server, pid, secret, name string, now time.Time) map[string]any {
	t.Helper()
	host := strings.TrimPrefix(srv.URL, "http://")
	body, hdr, err := devauth.TencentDynRegRequestFor(host, devauth.TencentHMACSHA256, pid, secret, name, now, 12345)
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Response map[string]any }
	raw := postRaw(t, srv.URL+"/device/register", body, hdr)
	if err := json.Unmarshal(raw, &out); err != nil || out.Response["RequestId"] == nil {
		t.Fatalf("not the envelope: %s", raw)
	}
	return out.Response
}

// decryptAsPublished is the reference's decryption written out here, apart
// from both the emulator and devauth (tencent.md §3.1/§3.2): base64, AES-128-CBC,
// key = the ProductSecret's first 16 characters, IV = sixteen ASCII '0',
// zero padding, trim to Len; then the psk from {"encryptionType":2,"psk":..}.
func decryptAsPublished(t testing.TB, productSecret, payload string, n int) string {
	t.Helper()
	ct, err := base64.StdEncoding.DecodeString(payload)
	if err != nil || len(ct)%16 != 0 || len(ct) < n || len(ct)-n >= 16 {
		t.Fatalf("payload of %d bytes for Len %d: %v", len(ct), n, err)
	}
	block, err := aes.NewCipher([]byte(productSecret)[:16])
	if err != nil {
		t.Fatal(err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, []byte("0000000000000000")).CryptBlocks(pt, ct)
	if strings.Trim(string(pt[n:]), "\x00") != "" {
		t.Fatalf("padding is not zero bytes")
	}
	var v struct {
		EncryptionType int    `json:"encryptionType"`
		PSK            string `json:"psk"`
	}
	if err := json.Unmarshal(pt[:n], &v); err != nil || v.EncryptionType != 2 {
		t.Fatalf("plaintext not {\"encryptionType\":2,...}: %v", err)
	}
	return v.PSK
}

// mqttConnect logs in with paho, MQTT 3.1.1, and returns the CONNACK code
// (0 = accepted). The connection is closed at the end of the test.
func mqttConnect(t testing.TB, addr, clientID, user, pass string) byte {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("MQTT connect timed out")
	}
	code := tok.(*paho.ConnectToken).ReturnCode()
	if code == 0 {
		if tok.Error() != nil {
			t.Fatalf("connect: %v", tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
	}
	return code
}

func lastRejection(t testing.TB, e *Emulator) MQTTRejection {
	t.Helper()
	rs := e.MQTTRejections()
	if len(rs) == 0 {
		t.Fatal("no MQTT rejection recorded")
	}
	return rs[len(rs)-1]
}

func lastRegistration(t testing.TB, e *Emulator) Registration {
	t.Helper()
	rs := e.Registrations()
	if len(rs) == 0 {
		t.Fatal("no registration recorded")
	}
	return rs[len(rs)-1]
}

func wantRefusal(t testing.TB, err error, code string) {
	t.Helper()
	re, ok := devauth.Refused(err)
	if !ok || re.Code != code {
		t.Fatalf("want refusal %s, got %v", code, err)
	}
}

// syncBuffer collects log output written from the HTTP and MQTT goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// noSecretsLogged fails if the log lacks what must be there or shows a secret.
func noSecretsLogged(t testing.TB, logs string, must []string, secrets ...string) {
	t.Helper()
	for _, m := range must {
		if !strings.Contains(logs, m) {
			t.Errorf("log lacks %q", m)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("log shows a secret")
		}
	}
}

// waitFor polls cond for up to 2 s (MQTT hooks run on the broker's goroutines).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
