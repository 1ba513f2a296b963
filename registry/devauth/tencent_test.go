package devauth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The expected values below are copied by hand from
// shared/reference/tencent.md; none is computed with this package's code.

// §3.1 worked example (qcloud-iot-sdk-embedded-c dynreg sample).
const (
	legacyPID     = "S3EUVBRJLB"
	legacyDN      = "device_1234"
	legacySecret  = "8XzjN8rfgFVGDTNTUGau4snA"
	legacyNonce   = 1439928322
	legacyTS      = 1568692235
	legacySig     = "ZWM4YTEyMWE2ODUxYzk1M2Q0MDc2OWNmN2FhMTg1ZWM1ODgxMWNkNQ=="
	legacyPayload = "eHGRUBar9LBPI+mcaHnVEZsj05mSdoZLPhd54hDJXv/2va2rXSpfddgRy5XE/FIS835NjUr5Mhw1AJSg4yGC/w=="
	legacyPlain   = `{"encryptionType":2,"psk":"7WmFA/MEs+Fy+32QwJWtYw=="}`
	legacyPSK     = "7WmFA/MEs+Fy+32QwJWtYw=="
)

func TestTencentLegacySignature(t *testing.T) {
	if got := TencentLegacySignature(legacySecret, legacyPID, legacyDN, legacyTS, legacyNonce); got != legacySig {
		t.Fatalf("signature %s, want %s", got, legacySig)
	}
	body := TencentLegacyDynRegRequest(legacyPID, legacySecret, legacyDN, time.Unix(legacyTS, 0), legacyNonce)
	want := `{"deviceName":"device_1234","nonce":1439928322,"productId":"S3EUVBRJLB","timestamp":1568692235,"signature":"` + legacySig + `"}`
	if string(body) != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
}

func TestTencentDecryptLegacyExample(t *testing.T) {
	for _, n := range []int{53, 0} { // Len as answered; 0 = strip the zero padding
		pt, err := TencentDecrypt(legacySecret, legacyPayload, n)
		if err != nil || string(pt) != legacyPlain {
			t.Fatalf("len %d: plaintext %q, %v", n, pt, err)
		}
	}
	psk, err := TencentDecryptPayload(legacySecret, legacyPayload, 53)
	if err != nil || psk != legacyPSK {
		t.Fatalf("psk %q, %v", psk, err)
	}
	// A wrong ProductSecret is an error, and the error shows neither secret
	// nor plaintext.
	_, err = TencentDecryptPayload("XXXXXXXXXXXXXXXXUGau4snA", legacyPayload, 53)
	if err == nil || strings.Contains(err.Error(), "XXXX") || strings.Contains(err.Error(), "psk\"") {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := TencentDecrypt("short", legacyPayload, 53); err == nil {
		t.Fatal("a ProductSecret under 16 characters was accepted")
	}
	if _, err := TencentDecrypt(legacySecret, legacyPayload, 65); err == nil {
		t.Fatal("Len beyond the payload was accepted")
	}
}

// §3.2: the doc's payload decrypt example (intl 1105/41820).
func TestTencentDecryptDocExample(t *testing.T) {
	const payload = "s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWphfTg=="
	psk, err := TencentDecryptPayload("hzvf5LF9S0isvBhDSauWMaIk", payload, 53)
	if err != nil || psk != "lDZ6Uqt+I9E0wW7rvDUs7Q==" {
		t.Fatalf("psk %q, %v", psk, err)
	}
	pt, _ := TencentDecrypt("hzvf5LF9S0isvBhDSauWMaIk", payload, 0)
	if string(pt) != `{"encryptionType":2,"psk":"lDZ6Uqt+I9E0wW7rvDUs7Q=="}` {
		t.Fatalf("plaintext %q", pt)
	}
}

// §3.2: the hmacsha1 /device/register vector (qcloud-dynreg-sign README).
func TestTencentDynRegSignature(t *testing.T) {
	body, hdr, err := TencentDynRegRequestFor(TencentDynRegHost, "hmacsha1", "PRODUCT_ID1", "PRODUCT_SECRETKEY", "DEVICENAME1",
		time.Unix(1629362589, 0), 333464802)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != `{"ProductId":"PRODUCT_ID1","DeviceName":"DEVICENAME1"}` || len(body) != 54 {
		t.Fatalf("body %s", body)
	}
	if got := hdr.Get("X-TC-Signature"); got != "7u3+tAPlt8O4mPpBm3lambv23sw=" {
		t.Fatalf("hmacsha1 signature %s", got)
	}
	if hdr.Get("X-TC-Algorithm") != "hmacsha1" || hdr.Get("X-TC-Timestamp") != "1629362589" || hdr.Get("X-TC-Nonce") != "333464802" {
		t.Fatalf("headers %v", hdr)
	}
	// The reference's own (unpublished) hmacsha256 computation of the same inputs.
	_, hdr = TencentDynRegRequest("PRODUCT_ID1", "PRODUCT_SECRETKEY", "DEVICENAME1", time.Unix(1629362589, 0), 333464802)
	if got := hdr.Get("X-TC-Signature"); got != "69kjTTAAkL07xH0GQoEn44Zmp0BusuM7TepzEwuTXNM=" || hdr.Get("X-TC-Algorithm") != "hmacsha256" {
		t.Fatalf("hmacsha256 signature %s", got)
	}
	if _, _, err := TencentDynRegRequestFor(TencentDynRegHost, "md5", "P", "S", "D", time.Now(), 1); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}

// §4: the reference's self-computed MQTT password vectors.
func TestTencentMQTTVectors(t *testing.T) {
	cid, user, pass, err := TencentMQTTWith(legacyPID, legacyDN, legacyPSK, "aB3dE", 4102444800, "hmacsha1")
	if err != nil {
		t.Fatal(err)
	}
	if cid != "S3EUVBRJLBdevice_1234" || user != "S3EUVBRJLBdevice_1234;21010406;aB3dE;4102444800" {
		t.Fatalf("client id %s, username %s", cid, user)
	}
	if pass != "47c8c4a850a2b965a1da4deb052a72cc2e254857;hmacsha1" {
		t.Fatalf("sha1 password %s", pass)
	}
	_, _, pass, _ = TencentMQTTWith(legacyPID, legacyDN, legacyPSK, "aB3dE", 4102444800, "hmacsha256")
	if pass != "a20a25e3b8c1ecfe8e5846da99aa4e3d160f6fc14ac44c2980f154848cbf1244;hmacsha256" {
		t.Fatalf("sha256 password %s", pass)
	}
	now := time.Unix(1700000000, 0)
	_, user, pass, err = TencentMQTT(legacyPID, legacyDN, legacyPSK, now)
	f := strings.Split(user, ";")
	if err != nil || len(f) != 4 || len(f[2]) != 5 || f[3] != "1700003600" || !strings.HasSuffix(pass, ";hmacsha1") {
		t.Fatalf("TencentMQTT: %s %s %v", user, pass, err)
	}
	if _, _, _, err := TencentMQTT(legacyPID, legacyDN, "not base64!", now); err == nil || strings.Contains(err.Error(), "not base64!") {
		t.Fatalf("bad psk: %v", err)
	}
}

// The HTTP clients against a stand-in server that answers with the
// reference's recorded answers.
func TestTencentRegisterHTTP(t *testing.T) {
	var gotBody string
	var gotHdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotHdr = string(b), r.Header.Clone()
		switch r.URL.Path {
		case "/register/dev":
			io.WriteString(w, `{"code":0,"message":"","len":53,"payload":"`+legacyPayload+`"}`)
		case "/device/register":
			if strings.Contains(gotBody, "refuse") {
				io.WriteString(w, `{"Response":{"Error":{"Code":"ResourceNotFound.DeviceNotExist","Message":"no such device"},"RequestId":"x"}}`)
				return
			}
			io.WriteString(w, `{"Response":{"Len":53,"Payload":"`+legacyPayload+`","RequestId":"x"}}`)
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	psk, err := TencentLegacyRegister(ctx, srv.URL, legacyPID, legacySecret, legacyDN)
	if err != nil || psk != legacyPSK {
		t.Fatalf("legacy: %q %v", psk, err)
	}
	var lb map[string]any
	if json.Unmarshal([]byte(gotBody), &lb) != nil || lb["productId"] != legacyPID || lb["signature"] == "" {
		t.Fatalf("legacy body %s", gotBody)
	}

	psk, err = TencentRegister(ctx, srv.URL+"/", legacyPID, legacySecret, legacyDN)
	if err != nil || psk != legacyPSK {
		t.Fatalf("register: %q %v", psk, err)
	}
	// Signed for the server's own host, port included.
	host := strings.TrimPrefix(srv.URL, "http://")
	want := TencentDynRegSignature(legacySecret, "hmacsha256", host, gotHdr.Get("X-TC-Timestamp"), gotHdr.Get("X-TC-Nonce"), []byte(gotBody))
	if gotHdr.Get("X-TC-Signature") != want || want == "" {
		t.Fatalf("signature not over host %s", host)
	}

	_, err = TencentRegister(ctx, srv.URL, legacyPID, legacySecret, "refuse")
	e, ok := Refused(err)
	if !ok || e.Code != "ResourceNotFound.DeviceNotExist" || e.Message != "no such device" || strings.Contains(err.Error(), legacySecret) {
		t.Fatalf("refusal: %v", err)
	}
}
