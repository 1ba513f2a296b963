package emulator

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	aliiot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry/devauth"
)

const (
	certTCProduct  = "CERTPROD01" // a Tencent certificate product
	certAliProduct = "a1X509Prod" // an Aliyun X.509 product
)

// certWorld is an emulator with a certificate product on each platform (and
// the key products of the other helpers), its HTTP API, both MQTT
// listeners, and the CA as read back from its state directory.
type certWorld struct {
	e              *Emulator
	srv            *httptest.Server
	plain, tlsAddr string
	dir            string
	roots          *x509.CertPool
	caPEM          []byte
}

func certStart(t testing.TB, cfg Config) *certWorld {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(t.TempDir(), "state")
	}
	if cfg.CertProducts == nil {
		cfg.CertProducts = []string{certTCProduct}
	}
	if cfg.AliyunCertProducts == nil {
		cfg.AliyunCertProducts = []string{certAliProduct}
	}
	if cfg.AliyunAccessKeyID == "" {
		cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = aliTestID, aliTestSecret
	}
	if cfg.AliyunProducts == nil {
		cfg.AliyunProducts = []string{aliTestProduct}
	}
	if cfg.TaskDelay == 0 {
		cfg.TaskDelay = -1
	}
	if cfg.CertDelay == 0 {
		cfg.CertDelay = -1
	}
	e, srv := start(t, cfg)
	w := &certWorld{e: e, srv: srv, dir: cfg.StateDir}
	var err error
	if w.plain, err = e.StartMQTT(""); err != nil {
		t.Fatal(err)
	}
	if w.tlsAddr, err = e.StartMQTTS(""); err != nil {
		t.Fatal(err)
	}
	if e.MQTTSAddr() != w.tlsAddr || !strings.HasPrefix(w.tlsAddr, "127.0.0.1:") {
		t.Fatalf("TLS broker on %q", w.tlsAddr)
	}
	// The trust a device gets: the file, not the emulator's own accessor.
	if w.caPEM, err = os.ReadFile(filepath.Join(cfg.StateDir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	w.roots = x509.NewCertPool()
	if !w.roots.AppendCertsFromPEM(w.caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	return w
}

// tcWaitTask polls DescribeMultiDevTask until TaskStatus 2 (2 = "任务已完成").
func tcWaitTask(t testing.TB, c *iot.Client, product, task string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r := iot.NewDescribeMultiDevTaskRequest()
		r.ProductId, r.TaskId = ptr(product), ptr(task)
		resp, err := c.DescribeMultiDevTask(r)
		if err != nil {
			t.Fatal(err)
		}
		if *resp.Response.TaskStatus == 2 {
			return
		}
	}
	t.Fatalf("task %s never finished", task)
}

// tcCreateCert creates Tencent devices with CreateMultiDevice and waits for the task.
func tcCreateCert(t testing.TB, c *iot.Client, product string, names ...string) string {
	t.Helper()
	r := iot.NewCreateMultiDeviceRequest()
	r.ProductId, r.DeviceNames = ptr(product), ptrs(names)
	resp, err := c.CreateMultiDevice(r)
	if err != nil {
		t.Fatal(err)
	}
	tcWaitTask(t, c, product, *resp.Response.TaskId)
	return *resp.Response.TaskId
}

// aliCreateCert creates Aliyun devices through the SDK's batch flow and
// returns the ApplyId.
func aliCreateCert(t testing.TB, srv *httptest.Server, c *aliiot.Client, product string, names ...string) int64 {
	t.Helper()
	chk := aliiot.CreateBatchCheckDeviceNamesRequest()
	aliReq(srv, chk.RpcRequest)
	chk.ProductKey, chk.DeviceName = product, &names
	cr, err := c.BatchCheckDeviceNames(chk)
	if err != nil || !cr.Success {
		t.Fatalf("BatchCheckDeviceNames: %v %s", err, cr.GetHttpContentString())
	}
	id := cr.Data.ApplyId
	status := func() string {
		st := aliiot.CreateQueryBatchRegisterDeviceStatusRequest()
		aliReq(srv, st.RpcRequest)
		st.ProductKey, st.ApplyId = product, requests.NewInteger64(id)
		sr, err := c.QueryBatchRegisterDeviceStatus(st)
		if err != nil || !sr.Success {
			t.Fatalf("QueryBatchRegisterDeviceStatus: %v", err)
		}
		return sr.Data.Status
	}
	wait := func(want string) {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if s := status(); s == want {
				return
			} else if strings.HasSuffix(s, "FAILED") {
				t.Fatalf("application %d: %s", id, s)
			}
		}
		t.Fatalf("application %d never reached %s", id, want)
	}
	wait("CHECK_SUCCESS")
	reg := aliiot.CreateBatchRegisterDeviceWithApplyIdRequest()
	aliReq(srv, reg.RpcRequest)
	reg.ProductKey, reg.ApplyId = product, requests.NewInteger64(id)
	if rr, err := c.BatchRegisterDeviceWithApplyId(reg); err != nil || !rr.Success {
		t.Fatalf("BatchRegisterDeviceWithApplyId: %v", err)
	}
	wait("CREATE_SUCCESS")
	return id
}

// aliDeviceCert calls QueryDeviceCert.
func aliDeviceCert(t testing.TB, srv *httptest.Server, c *aliiot.Client, product, name string) *aliiot.QueryDeviceCertResponse {
	t.Helper()
	r := aliiot.CreateQueryDeviceCertRequest()
	aliReq(srv, r.RpcRequest)
	r.ProductKey, r.DeviceName = product, name
	resp, err := c.QueryDeviceCert(r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// checkCert parses a device certificate and key as a device would, and
// checks what every vendor's has: it chains to roots, the key is RSA 2048
// in the PEM block type given, and it is the certificate's key.
func checkCert(t testing.TB, roots *x509.CertPool, certPEM, keyPEM, keyType string) *x509.Certificate {
	t.Helper()
	cb, _ := pem.Decode([]byte(certPEM))
	if cb == nil || cb.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %.40q", certPEM)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the device certificate does not chain to ca.pem: %v", err)
	}
	if cert.IsCA || !cert.BasicConstraintsValid {
		t.Fatal("a device certificate must say CA:FALSE")
	}
	if cert.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Fatalf("signed with %v, want SHA256-RSA", cert.SignatureAlgorithm)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		t.Fatalf("device key is %T, want RSA 2048", cert.PublicKey)
	}
	kb, _ := pem.Decode([]byte(keyPEM))
	if kb == nil || kb.Type != keyType {
		t.Fatalf("private key block is not %q", keyType) // never the key itself
	}
	if _, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM)); err != nil {
		t.Fatalf("the key is not the certificate's: %v", err)
	}
	return cert
}

// certLogin logs in on the TLS listener with a certificate and a CONNECT.
func (w *certWorld) certLogin(platform, certPEM, keyPEM, cid, user, pass string) error {
	cfg, err := devauth.CertTLSConfig(certPEM, keyPEM, w.roots, "127.0.0.1")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return devauth.MQTTLogin(ctx, platform, w.tlsAddr, cfg, cid, user, pass)
}

func requestsInt(id int64) requests.Integer { return requests.NewInteger64(id) }

func requestsSize(n int) requests.Integer { return requests.NewInteger(n) }

func x509CreateForBench(tmpl *x509.Certificate, ca *certAuthority, key *rsa.PrivateKey) ([]byte, error) {
	return x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
}
