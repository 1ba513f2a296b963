package emulator

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry/devauth"
)

var ctx = context.Background()

// Tencent, product-level key with pre-registered names: the emulator's raw
// answer decrypts with the published algorithm (written in the test) to the
// device's PSK; the device logs in over MQTT; then it is activated and a
// second registration is refused. Plus the negative cases.
func TestTencentDynRegPreRegistered(t *testing.T) {
	logs := &syncBuffer{}
	e, srv, addr := drStart(t, Config{DynReg: ProductSettings{DynamicRegistration: true}, Log: slog.New(slog.NewTextHandler(logs, nil))})
	secret := mustSecret(t, e, "tencent", testProduct)
	if len(secret) != 24 {
		t.Fatalf("ProductSecret %d characters", len(secret))
	}
	tcCreate(t, srv, "pre1", "pre2", "pre3")
	created, _ := e.TencentDevice(testProduct, "pre1")

	resp := tcDynRegRaw(t, srv, testProduct, secret, "pre1", time.Now())
	if resp["Error"] != nil {
		t.Fatalf("refused: %v", resp["Error"])
	}
	n, _ := resp["Len"].(float64)
	first := decryptAsPublished(t, secret, resp["Payload"].(string), int(n))
	if now, _ := e.TencentDevice(testProduct, "pre1"); first != now || n != 53 || first == created {
		t.Fatalf("decrypted PSK %q (Len %v), emulator has %q, created with %q: want the device's new key", first, n, now, created)
	}
	// The device side's client agrees; a retry before activation is allowed
	// and issues a fresh key again (doc 1081/138031: "重新生成 ... 旧密钥失效").
	psk, err := devauth.TencentRegister(ctx, srv.URL, testProduct, secret, "pre1")
	if now, _ := e.TencentDevice(testProduct, "pre1"); err != nil || psk != now || psk == first {
		t.Fatalf("devauth: %v (a fresh key: %v)", err, psk != first)
	}
	// The key issued before is refused by the broker now.
	if ocid, ouser, opass, _ := devauth.TencentMQTT(testProduct, "pre1", first, time.Now()); mqttConnect(t, addr, ocid, ouser, opass) != 4 {
		t.Fatal("the replaced key still logs in")
	}
	if r := lastRegistration(t, e); r.Platform != "tencent" || r.Product != testProduct || r.DeviceName != "pre1" ||
		r.Mode != ModePreRegistered || r.Result != "OK" || r.Transport != "https /device/register" {
		t.Fatalf("registration %+v", r)
	}

	// Login with the obtained PSK, both password algorithms.
	cid, user, pass, err := devauth.TencentMQTT(testProduct, "pre1", psk, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if code := mqttConnect(t, addr, cid, user, pass); code != 0 {
		t.Fatalf("CONNACK %d: %+v", code, e.MQTTRejections())
	}
	waitFor(t, "online", func() bool { st, _ := e.DeviceStatus("tencent", testProduct, "pre1"); return st.Online })
	st, _ := e.DeviceStatus("tencent", testProduct, "pre1")
	if !st.Activated || st.FirstOnline.IsZero() {
		t.Fatalf("status %+v", st)
	}
	_, user256, pass256, _ := devauth.TencentMQTTWith(testProduct, "pre1", psk, "zz9Yx", time.Now().Add(time.Minute).Unix(), "hmacsha256")
	if code := mqttConnect(t, addr, cid, user256, pass256); code != 0 {
		t.Fatalf("hmacsha256 CONNACK %d", code)
	}

	// Activated: registering again is refused.
	_, err = devauth.TencentRegister(ctx, srv.URL, testProduct, secret, "pre1")
	wantRefusal(t, err, "FailedOperation.DeviceAlreadyActivated")

	// A name not pre-registered, auto-create off.
	_, err = devauth.TencentRegister(ctx, srv.URL, testProduct, secret, "nobody")
	wantRefusal(t, err, "ResourceNotFound.DeviceNotExist")
	if _, ok := e.TencentDevice(testProduct, "nobody"); ok {
		t.Fatal("device created with auto-create off")
	}
	// A wrong ProductSecret.
	_, err = devauth.TencentRegister(ctx, srv.URL, testProduct, "WRONGwrongWRONGwrong1234", "pre2")
	wantRefusal(t, err, "AuthFailure.SignatureFailure")
	if strings.Contains(err.Error(), "WRONGwrong") {
		t.Fatal("the secret is in the error")
	}
	// The hmacsha1 variant, a stale timestamp, an unknown product.
	host := strings.TrimPrefix(srv.URL, "http://")
	body, hdr, _ := devauth.TencentDynRegRequestFor(host, "hmacsha1", testProduct, secret, "pre2", time.Now(), 7)
	var out struct{ Response map[string]any }
	json.Unmarshal(postRaw(t, srv.URL+"/device/register", body, hdr), &out)
	if out.Response["Error"] != nil || out.Response["Payload"] == nil {
		t.Fatalf("hmacsha1: %v", out.Response)
	}
	if c := rawCode(tcDynRegRaw(t, srv, testProduct, secret, "pre2", time.Now().Add(-10*time.Minute))); c != "AuthFailure.SignatureExpire" {
		t.Fatalf("stale timestamp: %s", c)
	}
	if c := rawCode(tcDynRegRaw(t, srv, "NOPRODUCT1", secret, "pre2", time.Now())); c != "ResourceNotFound.ProductNotExist" {
		t.Fatalf("unknown product: %s", c)
	}

	// Legacy /register/dev, as the C SDK v3 and the AT firmware call it
	// (its refusal codes have their own test, legacy_dynreg_test.go).
	legPSK, err := devauth.TencentLegacyRegister(ctx, srv.URL, testProduct, secret, "pre3")
	if want3, _ := e.TencentDevice(testProduct, "pre3"); err != nil || legPSK != want3 {
		t.Fatalf("legacy: %v", err)
	}
	raw := postRaw(t, srv.URL+"/register/dev", devauth.TencentLegacyDynRegRequest(testProduct, secret, "pre3", time.Now(), 99), nil)
	var leg struct {
		Code    int
		Len     int
		Payload string
	}
	want3, _ := e.TencentDevice(testProduct, "pre3")
	if json.Unmarshal(raw, &leg) != nil || leg.Code != 0 || decryptAsPublished(t, secret, leg.Payload, leg.Len) != want3 {
		t.Fatalf("legacy raw answer %s", raw)
	}
	_, err = devauth.TencentLegacyRegister(ctx, srv.URL, testProduct, "WRONGwrongWRONGwrong1234", "pre3")
	wantRefusal(t, err, "1010")

	// MQTT refusals: wrong password (4), expired (5), unknown device (5).
	if code := mqttConnect(t, addr, cid, user, strings.Repeat("0", 40)+";hmacsha1"); code != 4 {
		t.Fatalf("wrong password: CONNACK %d", code)
	}
	if r := lastRejection(t, e); r.Platform != "tencent" || r.DeviceName != "pre1" || r.ReturnCode != 4 || !strings.Contains(r.Reason, "PSK") {
		t.Fatalf("rejection %+v", r)
	}
	_, userOld, passOld, _ := devauth.TencentMQTTWith(testProduct, "pre1", psk, "aaaaa", time.Now().Add(-time.Minute).Unix(), "hmacsha1")
	if code := mqttConnect(t, addr, cid, userOld, passOld); code != 5 || !strings.Contains(lastRejection(t, e).Reason, "expired") {
		t.Fatalf("expired: CONNACK %d %+v", code, lastRejection(t, e))
	}
	ncid, nuser, npass, _ := devauth.TencentMQTT(testProduct, "nobody", psk, time.Now())
	if code := mqttConnect(t, addr, ncid, nuser, npass); code != 5 {
		t.Fatalf("unknown device: CONNACK %d", code)
	}
	noSecretsLogged(t, logs.String(), []string{"path=/device/register", "path=/register/dev", "code=AuthFailure.SignatureFailure",
		"msg=mqtt", "reason="}, secret, psk, first, legPSK, want3, pass, pass256)
}

// Tencent auto-create: unknown names are created up to the quota; the
// created device logs in; the switch and quota refusals.
func TestTencentDynRegAutoCreate(t *testing.T) {
	e, srv, addr := drStart(t, Config{DynRegProducts: map[string]ProductSettings{
		"tencent:" + testProduct: {DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 2}}})
	secret := mustSecret(t, e, "tencent", testProduct)
	tcCreate(t, srv, "existing") // pre-registered ones do not use the quota

	var psks []string
	for _, n := range []string{"auto1", "existing", "auto2"} {
		resp := tcDynRegRaw(t, srv, testProduct, secret, n, time.Now())
		if resp["Error"] != nil {
			t.Fatalf("%s: %v", n, resp["Error"])
		}
		got := decryptAsPublished(t, secret, resp["Payload"].(string), int(resp["Len"].(float64)))
		if have, ok := e.TencentDevice(testProduct, n); !ok || have != got {
			t.Fatalf("%s: answered PSK is not the device's", n)
		}
		psks = append(psks, got)
	}
	if r := e.Registrations(); len(r) != 3 || r[0].Mode != ModeAutoCreate || r[1].Mode != ModePreRegistered {
		t.Fatalf("registrations %+v", r)
	}
	_, err := devauth.TencentRegister(ctx, srv.URL, testProduct, secret, "auto3")
	wantRefusal(t, err, "LimitExceeded.DynamicRegisterDeviceExceedLimit")
	if _, ok := e.TencentDevice(testProduct, "auto3"); ok {
		t.Fatal("created over quota")
	}
	if r := lastRegistration(t, e); r.Mode != ModeAutoCreate || r.Result != "LimitExceeded.DynamicRegisterDeviceExceedLimit" {
		t.Fatalf("registration %+v", r)
	}
	_, err = devauth.TencentRegister(ctx, srv.URL, testProduct, secret, "bad/name")
	wantRefusal(t, err, "InvalidParameterValue")

	cid, user, pass, _ := devauth.TencentMQTT(testProduct, "auto1", psks[0], time.Now())
	if code := mqttConnect(t, addr, cid, user, pass); code != 0 {
		t.Fatalf("CONNACK %d", code)
	}

	if err := e.SetProductSettings("tencent", testProduct, ProductSettings{}); err != nil {
		t.Fatal(err)
	}
	_, err = devauth.TencentRegister(ctx, srv.URL, testProduct, secret, "auto2")
	wantRefusal(t, err, "UnauthorizedOperation.DynamicRegisterDisabled")
}

// aliSignForm is the HTTPS registration form, signed here with the
// reference's formula rather than devauth's.
func aliSignForm(pk, ps, dn, random string) string {
	m := hmac.New(sha256.New, []byte(ps))
	m.Write([]byte("deviceName" + dn + "productKey" + pk + "random" + random))
	return url.Values{"productKey": {pk}, "deviceName": {dn}, "random": {random},
		"sign":       {strings.ToUpper(hex.EncodeToString(m.Sum(nil)))}, // iotkit's upper-case hex
		"signMethod": {"hmacsha256"}}.Encode()
}

// Aliyun pre-registration over HTTPS (and over MQTT authType=register):
// the device gets a fresh DeviceSecret, logs in with it, and is then
// activated; the refusals.
func TestAliyunDynRegPreRegistration(t *testing.T) {
	e, srv, addr := drStart(t, Config{DynReg: ProductSettings{DynamicRegistration: true}})
	ps := mustSecret(t, e, "aliyun", aliTestProduct)
	orig := aliCreateDevices(t, srv, "dev0001", "dev0002")

	raw := postRaw(t, srv.URL+"/auth/register/device", []byte(aliSignForm(aliTestProduct, ps, "dev0001", "8Ygb7ULYh53B6OA")),
		map[string][]string{"Content-Type": {"application/x-www-form-urlencoded"}})
	var ans struct {
		Code int
		Data struct{ ProductKey, DeviceName, DeviceSecret string }
	}
	if json.Unmarshal(raw, &ans) != nil || ans.Code != 200 || ans.Data.DeviceName != "dev0001" || ans.Data.DeviceSecret == "" {
		t.Fatalf("answer %s", raw)
	}
	// Before activation the last DeviceSecret issued wins.
	ds, err := devauth.AliyunRegister(ctx, srv.URL, aliTestProduct, ps, "dev0001")
	if have, _ := e.AliyunDevice(aliTestProduct, "dev0001"); err != nil || ds != have || ds == orig[0] || ds == ans.Data.DeviceSecret {
		t.Fatalf("devauth: %v", err)
	}
	if r := lastRegistration(t, e); r.Platform != "aliyun" || r.Mode != ModePreRegistered || r.Result != "OK" {
		t.Fatalf("registration %+v", r)
	}

	cid, user, pass := devauth.AliyunMQTT(aliTestProduct, "dev0001", ds, time.Now())
	if code := mqttConnect(t, addr, cid, user, strings.ToUpper(pass)); code != 0 {
		t.Fatalf("CONNACK %d: %+v", code, e.MQTTRejections())
	}
	if st, _ := e.DeviceStatus("aliyun", aliTestProduct, "dev0001"); !st.Activated {
		t.Fatal("not activated")
	}
	// iotkit's docs: {"code":6289,"message":"device is already active"}.
	_, err = devauth.AliyunRegister(ctx, srv.URL, aliTestProduct, ps, "dev0001")
	wantRefusal(t, err, "6289")
	if re, _ := devauth.Refused(err); re.Message != "device is already active" {
		t.Fatalf("message %q", re.Message)
	}

	_, err = devauth.AliyunRegister(ctx, srv.URL, aliTestProduct, "wrongProductSecr", "dev0002")
	wantRefusal(t, err, "6292")
	_, err = devauth.AliyunRegister(ctx, srv.URL, aliTestProduct, ps, "notcreated")
	wantRefusal(t, err, "6100")
	_, err = devauth.AliyunRegister(ctx, srv.URL, "a1NoSuchProd", ps, "dev0002")
	wantRefusal(t, err, "6250")

	// MQTT-based pre-registration.
	ds2, err := devauth.AliyunRegisterMQTT(ctx, addr, nil, aliTestProduct, ps, "dev0002")
	if have, _ := e.AliyunDevice(aliTestProduct, "dev0002"); err != nil || ds2 != have || ds2 == orig[1] {
		t.Fatalf("MQTT register: %v", err)
	}
	_, err = devauth.AliyunRegisterMQTT(ctx, addr, nil, aliTestProduct, "wrongProductSecr", "dev0002")
	wantRefusal(t, err, "mqtt:4")

	// A wrong password is "bad username or password".
	cid2, user2, _ := devauth.AliyunMQTT(aliTestProduct, "dev0002", ds2, time.Now())
	if code := mqttConnect(t, addr, cid2, user2, strings.Repeat("ab", 32)); code != 4 {
		t.Fatalf("wrong password: CONNACK %d", code)
	}
	if r := lastRejection(t, e); r.Platform != "aliyun" || r.DeviceName != "dev0002" || !strings.Contains(r.Reason, "DeviceSecret") {
		t.Fatalf("rejection %+v", r)
	}
	if err := devauth.MQTTLogin(ctx, "aliyun", addr, nil, cid2, user2, "00"); err == nil {
		t.Fatal("MQTTLogin accepted a wrong password")
	} else {
		wantRefusal(t, err, "mqtt:4")
	}

	if err := e.SetProductSettings("aliyun", aliTestProduct, ProductSettings{}); err != nil {
		t.Fatal(err)
	}
	_, err = devauth.AliyunRegister(ctx, srv.URL, aliTestProduct, ps, "dev0002")
	wantRefusal(t, err, "6288")
}

// Aliyun registration-free: ClientID + DeviceToken over MQTT regnwl, a
// login with them, and the refusals: a tampered token, a wrong
// ProductSecret, the switch off, the per-device client limit.
func TestAliyunRegistrationFree(t *testing.T) {
	logs := &syncBuffer{}
	e, _, addr := drStart(t, Config{DynReg: ProductSettings{DynamicRegistration: true, RegistrationFree: true},
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	ps := mustSecret(t, e, "aliyun", aliTestProduct)

	cid, tok, err := devauth.AliyunRegisterFree(ctx, addr, nil, aliTestProduct, ps, "free0001")
	if err != nil || cid == "" || len(tok) < 16 {
		t.Fatalf("regnwl: %v", err)
	}
	if _, ok := e.AliyunDevice(aliTestProduct, "free0001"); !ok {
		t.Fatal("device not created by registration-free")
	}
	if r := lastRegistration(t, e); r.Mode != ModeRegistrationFree || r.Result != "OK" || r.Transport != "mqtt regnwl" {
		t.Fatalf("registration %+v", r)
	}
	mcid, user, pass := devauth.AliyunMQTTToken(aliTestProduct, "free0001", cid, tok)
	if code := mqttConnect(t, addr, mcid, user, pass); code != 0 {
		t.Fatalf("CONNACK %d: %+v", code, e.MQTTRejections())
	}
	if err := devauth.MQTTLogin(ctx, "aliyun", addr, nil, mcid, user, pass); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.DeviceStatus("aliyun", aliTestProduct, "free0001"); !st.Activated {
		t.Fatal("not activated")
	}

	tampered := []byte(tok)
	tampered[0] ^= 1
	if code := mqttConnect(t, addr, mcid, user, string(tampered)); code != 4 {
		t.Fatalf("tampered token: CONNACK %d", code)
	}
	if r := lastRejection(t, e); r.ReturnCode != 4 || !strings.Contains(r.Reason, "DeviceToken") || strings.Contains(r.Reason, tok) {
		t.Fatalf("rejection %+v", r)
	}
	_, _, err = devauth.AliyunRegisterFree(ctx, addr, nil, aliTestProduct, "wrongProductSecr", "free0001")
	wantRefusal(t, err, "mqtt:4")

	for i := 2; i <= maxTokensPerDevice; i++ { // up to 5 clients per device
		if _, _, err := devauth.AliyunRegisterFree(ctx, addr, nil, aliTestProduct, ps, "free0001"); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	_, _, err = devauth.AliyunRegisterFree(ctx, addr, nil, aliTestProduct, ps, "free0001")
	wantRefusal(t, err, "mqtt:5")
	if r := lastRegistration(t, e); r.Result != "6291" {
		t.Fatalf("registration %+v", r)
	}

	e.SetProductSettings("aliyun", aliTestProduct, ProductSettings{DynamicRegistration: true})
	_, _, err = devauth.AliyunRegisterFree(ctx, addr, nil, aliTestProduct, ps, "free0002")
	wantRefusal(t, err, "mqtt:5")
	if !strings.Contains(lastRejection(t, e).Reason, "6290") {
		t.Fatalf("rejection %+v", lastRejection(t, e))
	}
	noSecretsLogged(t, logs.String(), []string{"device=free0001", "code=OK"}, ps, tok, string(tampered))
}

// Close and New on the same StateDir keep ProductSecrets, settings (a
// changed Config does not override them), registrations, activations, the
// auto-create count and registration-free tokens.
func TestDynRegRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{StateDir: dir, DynReg: ProductSettings{DynamicRegistration: true, RegistrationFree: true}}
	e1, srv1, addr1 := drStart(t, cfg)
	tcSecret, aliSecret := mustSecret(t, e1, "tencent", testProduct), mustSecret(t, e1, "aliyun", aliTestProduct)
	tcSettings := ProductSettings{DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 1}
	if err := e1.SetProductSettings("tencent", testProduct, tcSettings); err != nil {
		t.Fatal(err)
	}
	if _, err := devauth.TencentRegister(ctx, srv1.URL, testProduct, tcSecret, "auto1"); err != nil {
		t.Fatal(err)
	}
	psk, _ := e1.TencentDevice(testProduct, "auto1")
	cid, user, pass, _ := devauth.TencentMQTT(testProduct, "auto1", psk, time.Now())
	if code := mqttConnect(t, addr1, cid, user, pass); code != 0 {
		t.Fatalf("CONNACK %d", code)
	}
	acid, tok, err := devauth.AliyunRegisterFree(ctx, addr1, nil, aliTestProduct, aliSecret, "free0001")
	if err != nil {
		t.Fatal(err)
	}
	regs := e1.Registrations()
	srv1.Close()
	if err := e1.Close(); err != nil {
		t.Fatal(err)
	}
	if e1.MQTTAddr() != "" {
		t.Fatal("broker still running after Close")
	}

	cfg.DynReg = ProductSettings{} // ignored: the products' settings are on disk
	e2, srv2, addr2 := drStart(t, cfg)
	if s := mustSecret(t, e2, "tencent", testProduct); s != tcSecret {
		t.Fatal("Tencent ProductSecret changed")
	}
	if s := mustSecret(t, e2, "aliyun", aliTestProduct); s != aliSecret {
		t.Fatal("Aliyun ProductSecret changed")
	}
	if s, _ := e2.ProductSettings("tencent", testProduct); s != tcSettings {
		t.Fatalf("Tencent settings %+v", s)
	}
	if s, _ := e2.ProductSettings("aliyun", aliTestProduct); !s.RegistrationFree || !s.DynamicRegistration {
		t.Fatalf("Aliyun settings %+v", s)
	}
	got := e2.Registrations()
	if len(got) != len(regs) {
		t.Fatalf("%d registrations, had %d", len(got), len(regs))
	}
	for i := range got {
		if !got[i].Time.Equal(regs[i].Time) || got[i].DeviceName != regs[i].DeviceName || got[i].Result != regs[i].Result || got[i].Mode != regs[i].Mode {
			t.Fatalf("registration %d: %+v, had %+v", i, got[i], regs[i])
		}
	}
	if st, _ := e2.DeviceStatus("tencent", testProduct, "auto1"); !st.Activated || st.Online {
		t.Fatalf("status after restart %+v", st)
	}
	_, err = devauth.TencentRegister(ctx, srv2.URL, testProduct, tcSecret, "auto1")
	wantRefusal(t, err, "FailedOperation.DeviceAlreadyActivated")
	_, err = devauth.TencentRegister(ctx, srv2.URL, testProduct, tcSecret, "auto2")
	wantRefusal(t, err, "LimitExceeded.DynamicRegisterDeviceExceedLimit")
	mcid, muser, mpass := devauth.AliyunMQTTToken(aliTestProduct, "free0001", acid, tok)
	if code := mqttConnect(t, addr2, mcid, muser, mpass); code != 0 {
		t.Fatalf("token after restart: CONNACK %d", code)
	}

	// Once more: the first restart replayed the live journal; this one reads
	// the snapshot it was compacted into.
	regs = e2.Registrations()
	srv2.Close()
	e2.Close()
	e3, srv3, addr3 := drStart(t, cfg)
	if s := mustSecret(t, e3, "tencent", testProduct); s != tcSecret {
		t.Fatal("Tencent ProductSecret lost in the snapshot")
	}
	if s, _ := e3.ProductSettings("tencent", testProduct); s != tcSettings {
		t.Fatalf("settings lost in the snapshot: %+v", s)
	}
	if got := e3.Registrations(); len(got) != len(regs) || len(got) < 4 {
		t.Fatalf("%d registrations in the snapshot, had %d", len(got), len(regs))
	}
	_, err = devauth.TencentRegister(ctx, srv3.URL, testProduct, tcSecret, "auto2")
	wantRefusal(t, err, "LimitExceeded.DynamicRegisterDeviceExceedLimit")
	_, err = devauth.TencentRegister(ctx, srv3.URL, testProduct, tcSecret, "auto1")
	wantRefusal(t, err, "FailedOperation.DeviceAlreadyActivated")
	if code := mqttConnect(t, addr3, mcid, muser, mpass); code != 0 {
		t.Fatalf("token after the second restart: CONNACK %d", code)
	}
}
