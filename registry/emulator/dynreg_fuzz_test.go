package emulator

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzDynRegRequest throws arbitrary bodies and header values at the three
// registration endpoints. Whatever comes in, nothing panics and the answer is
// the endpoint's JSON.
func FuzzDynRegRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"ProductId":"ABCDEFGHIJ","DeviceName":"d1"}`), "hmacsha256", "1", "c2ln")
	f.Add(uint8(0), []byte(`{"ProductId":["x"],"DeviceName":null}`), "hmacsha1", "-1", "")
	f.Add(uint8(1), []byte(`{"deviceName":"d","nonce":1,"productId":"ABCDEFGHIJ","timestamp":1,"signature":"x"}`), "", "", "")
	f.Add(uint8(1), []byte(`{"nonce":1e999,"timestamp":"x"}`), "", "", "")
	f.Add(uint8(2), []byte("productKey=a1TestProdKey&deviceName=dev1&random=r&sign=00&signMethod=hmacmd5"), "", "", "")
	f.Add(uint8(2), []byte("productKey=%zz&&=&sign"), "", "", "")
	f.Add(uint8(3), []byte("\x00\xff{"), "x", "99999999999999999999", "===")

	e, err := New(Config{SecretID: testID, SecretKey: testKey, Products: []string{testProduct},
		AliyunAccessKeyID: aliTestID, AliyunAccessKeySecret: aliTestSecret, AliyunProducts: []string{aliTestProduct},
		TaskDelay: -1, DynReg: ProductSettings{DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 5}})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close()
	paths := []string{"/device/register", "/register/dev", "/auth/register/device", "/device/register"}
	f.Fuzz(func(t *testing.T, which uint8, body []byte, alg, nonce, sig string) {
		path := paths[int(which)%len(paths)]
		req := httptest.NewRequest("POST", "http://127.0.0.1:8443"+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-TC-Algorithm", alg)
		req.Header.Set("X-TC-Timestamp", time.Now().Format("20060102")) // not unix seconds: refused
		if which&4 != 0 {
			req.Header.Set("X-TC-Timestamp", nonce)
		}
		req.Header.Set("X-TC-Nonce", nonce)
		req.Header.Set("X-TC-Signature", sig)
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		if w.Code != 200 || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("HTTP %d: %s", w.Code, w.Body.Bytes())
		}
	})
}
