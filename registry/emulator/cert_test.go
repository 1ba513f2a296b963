package emulator

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	aliiot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry/devauth"
)

// Values from the vendors' material, not from the emulator's code.
const (
	// ProductProperties.EncryptionType: "加密类型，1表示证书认证，2表示签名认证"
	// (tencentcloud-sdk-go v1.0.162 iotcloud/v20180614/models.go).
	tcEncryptionCert, tcEncryptionKey = "1", "2"
	// The PEM block types of the vendors' device keys: Tencent's PKCS#8,
	// Alibaba's PKCS#1 (their issued keys; Alibaba doc 140588).
	tcKeyBlock, aliKeyBlock = "PRIVATE KEY", "RSA PRIVATE KEY"
	// DescribeDeviceClientKey's refusals, as the SDK lists them.
	tcAlreadyGot, tcWrongAuth = "UnsupportedOperation.ClientCertAlreadyGot", "UnsupportedOperation.WrongProductAuthType"
	// QueryDeviceCert's Status: "0:生成中 1:生成失败 2:生成成功" (doc api-omdh29).
	aliCertGenerating, aliCertReady = 0, 2
	// MQTT 3.1.1 CONNACK return codes.
	connackBadCredentials, connackNotAuthorized = "mqtt:4", "mqtt:5"
)

// Tencent certificate products through the official SDK: DescribeProducts
// says EncryptionType 1, batch creation hands out a certificate and key per
// device that chain to ca.pem and name the device as Tencent does (CN =
// ProductId+DeviceName), DescribeDevice shows the certificate, and the key
// products beside them keep their PSKs.
func TestTencentCertProductSDK(t *testing.T) {
	w := certStart(t, Config{})
	c := sdk(t, w.srv, testID, testKey)

	pr, err := c.DescribeProducts(iot.NewDescribeProductsRequest())
	if err != nil {
		t.Fatal(err)
	}
	enc := map[string]string{}
	for _, p := range pr.Response.Products {
		enc[*p.ProductId] = *p.ProductProperties.EncryptionType
	}
	if enc[certTCProduct] != tcEncryptionCert || enc[testProduct] != tcEncryptionKey {
		t.Fatalf("EncryptionType %v: want %s %s, %s %s", enc, certTCProduct, tcEncryptionCert, testProduct, tcEncryptionKey)
	}

	names := []string{"cdev1", "cdev2"}
	task := tcCreateCert(t, c, certTCProduct, names...)
	md := iot.NewDescribeMultiDevicesRequest()
	md.ProductId, md.TaskId, md.Offset, md.Limit = ptr(certTCProduct), ptr(task), ptr(uint64(0)), ptr(uint64(100))
	mr, err := c.DescribeMultiDevices(md)
	if err != nil {
		t.Fatal(err)
	}
	if len(mr.Response.DevicesInfo) != len(names) {
		t.Fatalf("%d devices", len(mr.Response.DevicesInfo))
	}
	seen := map[string]bool{}
	for _, d := range mr.Response.DevicesInfo {
		if *d.DevicePsk != "" || *d.Result != 0 {
			t.Fatalf("%s: a certificate device has no PSK and result 0 (psk %d chars, result %d)", *d.DeviceName, len(*d.DevicePsk), *d.Result)
		}
		cert := checkCert(t, w.roots, *d.DeviceCert, *d.DevicePrivateKey, tcKeyBlock)
		if want := certTCProduct + *d.DeviceName; cert.Subject.CommonName != want || len(cert.Subject.Organization) != 0 {
			t.Fatalf("subject %q, want CN=%s alone", cert.Subject, want)
		}
		if cert.SerialNumber.Sign() != 0 {
			t.Fatalf("serial %v: Tencent's device certificates carry serial 0", cert.SerialNumber)
		}
		if days := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24; days != 3650 {
			t.Fatalf("valid %v days, Tencent's are 3650", days)
		}
		if cert.KeyUsage != x509.KeyUsageDigitalSignature {
			t.Fatalf("key usage %v", cert.KeyUsage)
		}
		if seen[*d.DeviceCert] {
			t.Fatal("two devices got the same certificate")
		}
		seen[*d.DeviceCert] = true

		dr := iot.NewDescribeDeviceRequest()
		dr.ProductID, dr.DeviceName = ptr(certTCProduct), d.DeviceName
		dd, err := c.DescribeDevice(dr)
		if err != nil {
			t.Fatal(err)
		}
		if *dd.Response.DeviceCert != *d.DeviceCert || *dd.Response.DevicePsk != "" {
			t.Fatalf("DescribeDevice shows another certificate (or a PSK) for %s", *d.DeviceName)
		}
		// DescribeMultiDevices handed the key out: "1 已获取过设备密钥".
		if *dd.Response.CertState != 1 {
			t.Fatalf("CertState %d after the key was handed out", *dd.Response.CertState)
		}
	}

	// The key product beside it: unchanged.
	tcCreateCert(t, c, testProduct, "kdev1")
	dr := iot.NewDescribeDeviceRequest()
	dr.ProductID, dr.DeviceName = ptr(testProduct), ptr("kdev1")
	dd, err := c.DescribeDevice(dr)
	if err != nil {
		t.Fatal(err)
	}
	if *dd.Response.DevicePsk == "" || *dd.Response.DeviceCert != "" {
		t.Fatal("a key device must keep its PSK and have no certificate")
	}
}

// DescribeDeviceClientKey hands a certificate device's key out once after
// creation ("刚生成或者重置设备后仅可调用一次"), and refuses as the SDK lists.
func TestTencentClientKeyOnce(t *testing.T) {
	w := certStart(t, Config{})
	c := sdk(t, w.srv, testID, testKey)
	task := tcCreateCert(t, c, certTCProduct, "once1")

	ck := func(product, name string) (string, string) {
		r := iot.NewDescribeDeviceClientKeyRequest()
		r.ProductId, r.DeviceName = ptr(product), ptr(name)
		resp, err := c.DescribeDeviceClientKey(r)
		if err != nil {
			return "", errCode(err)
		}
		return *resp.Response.ClientKey, ""
	}
	certPEM, ok := w.e.TencentDeviceCert(certTCProduct, "once1")
	if !ok {
		t.Fatal("no certificate")
	}
	key, code := ck(certTCProduct, "once1")
	if code != "" {
		t.Fatalf("first DescribeDeviceClientKey: %s", code)
	}
	checkCert(t, w.roots, certPEM, key, tcKeyBlock)

	tests := []struct {
		name, product, device, want string
	}{
		{"second read", certTCProduct, "once1", tcAlreadyGot},
		{"key product", testProduct, "whatever", tcWrongAuth},
		{"no such device", certTCProduct, "nobody", "ResourceNotFound.DeviceNotExist"},
		{"no such product", "NOPRODUCT1", "once1", "ResourceNotFound.ProductNotExist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if k, code := ck(tt.product, tt.device); code != tt.want || k != "" {
				t.Fatalf("got %q (key %d chars), want %s", code, len(k), tt.want)
			}
		})
	}
	// The task still answers with the key for its lifetime ("其生命周期与任务
	// 生命周期一致"), the same key.
	md := iot.NewDescribeMultiDevicesRequest()
	md.ProductId, md.TaskId, md.Offset, md.Limit = ptr(certTCProduct), ptr(task), ptr(uint64(0)), ptr(uint64(100))
	mr, err := c.DescribeMultiDevices(md)
	if err != nil {
		t.Fatal(err)
	}
	if *mr.Response.DevicesInfo[0].DevicePrivateKey != key {
		t.Fatal("the task's cached key is not the key handed out")
	}

	// CreateDevice answers with the key and keeps it not: no second read.
	cr := iot.NewCreateDeviceRequest()
	cr.ProductId, cr.DeviceName = ptr(certTCProduct), ptr("single1")
	resp, err := c.CreateDevice(cr)
	if err != nil {
		t.Fatal(err)
	}
	checkCert(t, w.roots, *resp.Response.DeviceCert, *resp.Response.DevicePrivateKey, tcKeyBlock)
	if *resp.Response.DevicePsk != "" {
		t.Fatal("CreateDevice gave a certificate device a PSK")
	}
	if _, code := ck(certTCProduct, "single1"); code != tcAlreadyGot {
		t.Fatalf("after CreateDevice: %q, want %s", code, tcAlreadyGot)
	}
}

// Aliyun X.509 products through the official SDK: QueryProduct says x509,
// the batch creates devices without DeviceSecrets, QueryDeviceCert answers
// Status 0 while the certificate is being made and then the certificate,
// its key (again on every call) and its CertSN; refusals for secret
// products; the X.509 application limit of 1,000 names.
func TestAliyunX509ProductSDK(t *testing.T) {
	clk := newClock()
	w := certStart(t, Config{Now: clk.Now, CertDelay: 10 * time.Second})
	c := aliSDK(t, aliTestID, aliTestSecret)

	for _, tt := range []struct{ product, want string }{{certAliProduct, "x509"}, {aliTestProduct, "secret"}} {
		r := aliiot.CreateQueryProductRequest()
		aliReq(w.srv, r.RpcRequest)
		r.ProductKey = tt.product
		resp, err := c.QueryProduct(r)
		if err != nil || resp.Data.AuthType != tt.want {
			t.Fatalf("%s AuthType %q (%v), want %q", tt.product, resp.Data.AuthType, err, tt.want)
		}
	}

	names := []string{"x509dev1", "x509dev2"}
	id := aliCreateCert(t, w.srv, c, certAliProduct, names...)
	pg := aliiot.CreateQueryPageByApplyIdRequest()
	aliReq(w.srv, pg.RpcRequest)
	pg.ApplyId, pg.PageSize = requestsInt(id), requestsSize(50)
	page, err := c.QueryPageByApplyId(pg)
	if err != nil || len(page.ApplyDeviceList.ApplyDeviceInfo) != len(names) {
		t.Fatalf("QueryPageByApplyId: %v", err)
	}
	for _, d := range page.ApplyDeviceList.ApplyDeviceInfo {
		if d.DeviceSecret != "" {
			t.Fatalf("%s: an X.509 device has no DeviceSecret", d.DeviceName)
		}
	}

	if r := aliDeviceCert(t, w.srv, c, certAliProduct, names[0]); !r.Success || r.DeviceCertInfo.Status != aliCertGenerating ||
		r.DeviceCertInfo.Certificate != "" || r.DeviceCertInfo.PrivateKey != "" {
		t.Fatalf("before the certificate is made: status %d", r.DeviceCertInfo.Status)
	}
	clk.Add(10 * time.Second)
	var serials = map[string]bool{}
	for _, n := range names {
		r := aliDeviceCert(t, w.srv, c, certAliProduct, n)
		info := r.DeviceCertInfo
		if !r.Success || info.Status != aliCertReady {
			t.Fatalf("%s: status %d", n, info.Status)
		}
		cert := checkCert(t, w.roots, info.Certificate, info.PrivateKey, aliKeyBlock)
		if cert.Subject.CommonName != "Alibaba Cloud IoT Certificate" || strings.Join(cert.Subject.Organization, "") != "Alibaba Cloud IoT" ||
			strings.Join(cert.Subject.Country, "") != "CN" {
			t.Fatalf("subject %q", cert.Subject)
		}
		if info.CertSN != cert.SerialNumber.String() || serials[info.CertSN] {
			t.Fatalf("CertSN %q for serial %v", info.CertSN, cert.SerialNumber)
		}
		serials[info.CertSN] = true
		if cert.NotAfter.Year()-cert.NotBefore.Year() != 100 {
			t.Fatalf("valid %v to %v, Alibaba's are 100 years", cert.NotBefore, cert.NotAfter)
		}
		again := aliDeviceCert(t, w.srv, c, certAliProduct, n).DeviceCertInfo
		if again.PrivateKey != info.PrivateKey || again.Certificate != info.Certificate {
			t.Fatal("a second QueryDeviceCert answers another certificate")
		}
	}

	// Refusals.
	if r := aliDeviceCert(t, w.srv, c, aliTestProduct, "nobody"); r.Success || r.Code != "iot.device.NotExistedDevice" {
		t.Fatalf("unknown device: %s", r.Code)
	}
	cu := aliiot.CreateQueryCertUrlByApplyIdRequest()
	aliReq(w.srv, cu.RpcRequest)
	cu.ApplyId = requestsInt(id)
	if ur, err := c.QueryCertUrlByApplyId(cu); err != nil || !ur.Success || !strings.HasPrefix(ur.CertUrl, "https://") {
		t.Fatalf("QueryCertUrlByApplyId: %v %+v", err, ur)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = "many" + strconv.Itoa(1000+i)
	}
	chk := aliiot.CreateBatchCheckDeviceNamesRequest()
	aliReq(w.srv, chk.RpcRequest)
	chk.ProductKey, chk.DeviceName = certAliProduct, &many
	if r, err := c.BatchCheckDeviceNames(chk); err != nil || r.Success || r.Code != "iot.device.DeviceCountExceeded" {
		t.Fatalf("1,001 names for an X.509 product: %v %s", err, r.Code)
	}
}

// The TLS listener: a device logs in with its own certificate; another
// device's certificate, a certificate of another CA, none at all, and
// certificate devices on the key path are refused, each the right way.
func TestCertMQTTLogin(t *testing.T) {
	w := certStart(t, Config{})
	c := sdk(t, w.srv, testID, testKey)
	task := tcCreateCert(t, c, certTCProduct, "mt1", "mt2")
	md := iot.NewDescribeMultiDevicesRequest()
	md.ProductId, md.TaskId, md.Offset, md.Limit = ptr(certTCProduct), ptr(task), ptr(uint64(0)), ptr(uint64(100))
	mr, err := c.DescribeMultiDevices(md)
	if err != nil {
		t.Fatal(err)
	}
	tc := map[string][2]string{}
	for _, d := range mr.Response.DevicesInfo {
		tc[*d.DeviceName] = [2]string{*d.DeviceCert, *d.DevicePrivateKey}
	}
	tcCreateCert(t, c, testProduct, "keydev")

	ac := aliSDK(t, aliTestID, aliTestSecret)
	aliCreateCert(t, w.srv, ac, certAliProduct, "amt1", "amt2")
	ali := map[string][2]string{}
	for _, n := range []string{"amt1", "amt2"} {
		info := aliDeviceCert(t, w.srv, ac, certAliProduct, n).DeviceCertInfo
		ali[n] = [2]string{info.Certificate, info.PrivateKey}
	}
	other := otherCACert(t)

	now := time.Now()
	tcCID := func(name string) (string, string, string) { return devauth.TencentMQTTCert(certTCProduct, name, now) }
	aliCID := func(name string) (string, string, string) { return devauth.AliyunMQTTCert(certAliProduct, name, now) }
	tests := []struct {
		name     string
		platform string
		cert     [2]string
		connect  func() (string, string, string)
		want     string // "" = logged in; else the *devauth.Error code, or "tls:" for any TLS refusal
	}{
		{"tencent own certificate", "tencent", tc["mt1"], func() (string, string, string) { return tcCID("mt1") }, ""},
		{"tencent another device's certificate", "tencent", tc["mt2"], func() (string, string, string) { return tcCID("mt1") }, connackBadCredentials},
		{"tencent key device on the certificate port", "tencent", tc["mt1"], func() (string, string, string) {
			return devauth.TencentMQTTCert(testProduct, "keydev", now)
		}, connackNotAuthorized},
		{"tencent expired username", "tencent", tc["mt1"], func() (string, string, string) {
			cid := certTCProduct + "mt1"
			return cid, cid + ";21010406;abcde;1000", ""
		}, connackNotAuthorized},
		{"aliyun own certificate", "aliyun", ali["amt1"], func() (string, string, string) { return aliCID("amt1") }, ""},
		{"aliyun another device's certificate", "aliyun", ali["amt2"], func() (string, string, string) { return aliCID("amt1") }, connackBadCredentials},
		{"aliyun securemode 3", "aliyun", ali["amt1"], func() (string, string, string) {
			return certAliProduct + ".amt1|securemode=3,signmethod=hmacsha256|", "amt1&" + certAliProduct, ""
		}, connackBadCredentials},
		{"a Tencent certificate as an Aliyun device", "aliyun", tc["mt1"], func() (string, string, string) { return aliCID("amt1") }, connackBadCredentials},
		{"a certificate of another CA", "tencent", other, func() (string, string, string) { return tcCID("mt1") }, "tls:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cid, user, pass := tt.connect()
			err := w.certLogin(tt.platform, tt.cert[0], tt.cert[1], cid, user, pass)
			checkRefusal(t, err, tt.want)
		})
	}

	t.Run("no client certificate", func(t *testing.T) {
		cfg, _ := devauth.CertTLSConfig(tc["mt1"][0], tc["mt1"][1], w.roots, "127.0.0.1")
		cfg.Certificates = nil
		cid, user, pass := tcCID("mt1")
		checkRefusal(t, devauth.MQTTLogin(t.Context(), "tencent", w.tlsAddr, cfg, cid, user, pass), "tls:")
	})

	t.Run("aliyun identity", func(t *testing.T) {
		cfg, err := devauth.CertTLSConfig(ali["amt2"][0], ali["amt2"][1], w.roots, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		pk, dn, err := devauth.AliyunIdentify(t.Context(), w.tlsAddr, cfg)
		if err != nil || pk != certAliProduct || dn != "amt2" {
			t.Fatalf("identity %q %q %v", pk, dn, err)
		}
	})

	// Certificate devices on the key path: refused before any signature is
	// checked (their empty secret would otherwise sign).
	t.Run("key login of certificate devices", func(t *testing.T) {
		user := certTCProduct + "mt1;21010406;abcde;" + strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
		m := hmac.New(sha1.New, nil)
		m.Write([]byte(user))
		err := devauth.MQTTLogin(t.Context(), "tencent", w.plain, nil, certTCProduct+"mt1", user, hex.EncodeToString(m.Sum(nil))+";hmacsha1")
		checkRefusal(t, err, connackNotAuthorized)
		acid, auser, apass, err := devauth.AliyunMQTTWith(certAliProduct+".amt1", certAliProduct, "amt1", "", "", devauth.AliyunHMACSHA256, 2)
		if err != nil {
			t.Fatal(err)
		}
		checkRefusal(t, devauth.MQTTLogin(t.Context(), "aliyun", w.plain, nil, acid, auser, apass), connackNotAuthorized)
	})

	// The refusals were recorded with their reasons, never a key.
	for _, r := range w.e.MQTTRejections() {
		if strings.Contains(r.Reason, "PRIVATE KEY") {
			t.Fatal("a rejection reason holds a key")
		}
	}
	if st, ok := w.e.DeviceStatus("tencent", certTCProduct, "mt1"); !ok || !st.Activated {
		t.Fatal("a certificate login does not activate the device")
	}
}

func checkRefusal(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("refused: %v", err)
	case want == "":
		return
	}
	var de *devauth.Error
	if !errors.As(err, &de) {
		t.Fatalf("want a refusal %s, got %v", want, err)
	}
	if want == "tls:" && !strings.HasPrefix(de.Code, "tls:") || want != "tls:" && de.Code != want {
		t.Fatalf("refused with %s (%s), want %s", de.Code, de.Message, want)
	}
}

// otherCACert is a certificate and key from a CA the emulator does not know.
func otherCACert(t *testing.T) [2]string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: certTCProduct + "mt1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := x509.MarshalPKCS8PrivateKey(key)
	return [2]string{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}))}
}

// A restart keeps the CA (the same ca.pem, 0600 with its key), every
// certificate and whether its key was handed out; a device logs in with its
// old certificate; a task running at shutdown finishes with certificates
// from the same CA; half a CA is refused at start.
func TestCertRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	cfg := Config{StateDir: dir}
	w1 := certStart(t, cfg)
	c1 := sdk(t, w1.srv, testID, testKey)
	tcCreateCert(t, c1, certTCProduct, "keep1")
	certPEM, _ := w1.e.TencentDeviceCert(certTCProduct, "keep1")
	r := iot.NewDescribeDeviceClientKeyRequest()
	r.ProductId, r.DeviceName = ptr(certTCProduct), ptr("keep1")
	kr, err := c1.DescribeDeviceClientKey(r)
	if err != nil {
		t.Fatal(err)
	}
	key := *kr.Response.ClientKey
	ac := aliSDK(t, aliTestID, aliTestSecret)
	aliCreateCert(t, w1.srv, ac, certAliProduct, "akeep1")
	aliInfo := aliDeviceCert(t, w1.srv, ac, certAliProduct, "akeep1").DeviceCertInfo
	// A task still running at shutdown: the certificates of a task are made
	// only when it is due.
	mr := iot.NewCreateMultiDeviceRequest()
	mr.ProductId, mr.DeviceNames = ptr(certTCProduct), ptrs([]string{"late1"})
	if _, err := c1.CreateMultiDevice(mr); err != nil {
		t.Fatal(err)
	}
	w1.srv.Close()
	w1.e.Close()

	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
	w2 := certStart(t, cfg)
	if string(w2.caPEM) != string(w1.caPEM) {
		t.Fatal("the CA changed across the restart")
	}
	if got, _ := w2.e.TencentDeviceCert(certTCProduct, "keep1"); got != certPEM {
		t.Fatal("the certificate changed across the restart")
	}
	cid, user, pass := devauth.TencentMQTTCert(certTCProduct, "keep1", time.Now())
	if err := w2.certLogin("tencent", certPEM, key, cid, user, pass); err != nil {
		t.Fatalf("old certificate after restart: %v", err)
	}
	acid, auser, apass := devauth.AliyunMQTTCert(certAliProduct, "akeep1", time.Now())
	if err := w2.certLogin("aliyun", aliInfo.Certificate, aliInfo.PrivateKey, acid, auser, apass); err != nil {
		t.Fatalf("old X.509 certificate after restart: %v", err)
	}
	c2 := sdk(t, w2.srv, testID, testKey)
	r2 := iot.NewDescribeDeviceClientKeyRequest() // a request keeps the host it was first sent to
	r2.ProductId, r2.DeviceName = ptr(certTCProduct), ptr("keep1")
	if _, err := c2.DescribeDeviceClientKey(r2); errCode(err) != tcAlreadyGot {
		t.Fatalf("the key was handed out before the restart: %s", errCode(err))
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if late, ok := w2.e.TencentDeviceCert(certTCProduct, "late1"); ok {
			checkCert(t, w2.roots, late, latestKey(t, w2, c2, "late1"), tcKeyBlock)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the task running at shutdown never finished")
		}
	}
	w2.srv.Close()
	w2.e.Close()

	if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{StateDir: dir, SecretID: testID, SecretKey: testKey, CertProducts: []string{certTCProduct}})
	if err == nil || !strings.Contains(err.Error(), "ca-key.pem") {
		t.Fatalf("half a CA: %v", err)
	}
}

func latestKey(t *testing.T, w *certWorld, c *iot.Client, name string) string {
	t.Helper()
	r := iot.NewDescribeDeviceClientKeyRequest()
	r.ProductId, r.DeviceName = ptr(certTCProduct), ptr(name)
	kr, err := c.DescribeDeviceClientKey(r)
	if err != nil {
		t.Fatal(err)
	}
	return *kr.Response.ClientKey
}

// A product keeps the authentication type it was created with, and
// certificate products take no dynamic registration.
func TestCertProductConfigRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	e, err := New(Config{StateDir: dir, SecretID: testID, SecretKey: testKey, Products: []string{"SWITCHME01"}})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"key product named as certificate", Config{StateDir: dir, CertProducts: []string{"SWITCHME01"}}, "cannot change"},
		{"dynamic registration of a certificate product", Config{CertProducts: []string{"CERTDR0001"},
			DynRegProducts: map[string]ProductSettings{"tencent:CERTDR0001": {DynamicRegistration: true}}}, "not emulated"},
		{"aliyun dynamic registration of an X.509 product", Config{AliyunAccessKeyID: aliTestID, AliyunAccessKeySecret: aliTestSecret,
			AliyunCertProducts: []string{"a1CertDR"}, DynRegProducts: map[string]ProductSettings{"aliyun:a1CertDR": {DynamicRegistration: true}}}, "not emulated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SecretID, tt.cfg.SecretKey = testID, testKey
			e, err := New(tt.cfg)
			if err == nil {
				e.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v, want %q", err, tt.want)
			}
		})
	}
	// A global default does not switch registration on for certificate products.
	e2, err := New(Config{SecretID: testID, SecretKey: testKey, CertProducts: []string{"CERTDR0002"}, DynReg: ProductSettings{DynamicRegistration: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if st, _ := e2.ProductSettings("tencent", "CERTDR0002"); st.DynamicRegistration {
		t.Fatal("dynamic registration on for a certificate product")
	}
	if err := e2.SetProductSettings("tencent", "CERTDR0002", ProductSettings{DynamicRegistration: true}); err == nil {
		t.Fatal("SetProductSettings switched registration on for a certificate product")
	}
}

// An expired device certificate fails the TLS handshake, on the emulator's
// clock: Tencent's are valid 3650 days.
func TestCertExpired(t *testing.T) {
	clk := newClock()
	w := certStart(t, Config{Now: clk.Now})
	c := sdk(t, w.srv, testID, testKey)
	r := iot.NewCreateDeviceRequest()
	r.ProductId, r.DeviceName = ptr(certTCProduct), ptr("old1")
	resp, err := c.CreateDevice(r)
	if err != nil {
		t.Fatal(err)
	}
	cid, user, pass := devauth.TencentMQTTCert(certTCProduct, "old1", time.Now())
	if err := w.certLogin("tencent", *resp.Response.DeviceCert, *resp.Response.DevicePrivateKey, cid, user, pass); err != nil {
		t.Fatalf("a fresh certificate: %v", err)
	}
	clk.Add(3651 * 24 * time.Hour)
	err = w.certLogin("tencent", *resp.Response.DeviceCert, *resp.Response.DevicePrivateKey, cid, user, pass)
	checkRefusal(t, err, "tls:")
}
