package provision

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
	"github.com/iotburn/iotburn/templates"
)

// productWorld is one emulator (both vendors, dynamic registration set per
// product, its MQTT broker), simulated boards that register themselves
// against it, and a ledger.
type productWorld struct {
	emu    *emulator.Emulator
	url    string
	broker string
	cloud  registry.Platform
	ledger *ledger.Ledger
	farm   *sim.Farm
}

func newProductWorld(t *testing.T, platform, kind string, settings emulator.ProductSettings, boards int) *productWorld {
	t.Helper()
	cfg := emulator.Config{Products: []string{testProduct}, AliyunProducts: []string{"a1Prod"}, TaskDelay: -1, RateLimit: -1,
		DynRegProducts: map[string]emulator.ProductSettings{"tencent:" + testProduct: settings, "aliyun:a1Prod": settings}}
	emu, url, broker := startEmulator(t, &cfg)
	w := &productWorld{emu: emu, url: url, broker: broker, ledger: openLedger(t)}
	var err error
	if platform == "tencent" {
		w.cloud, err = tencent.New(tencent.Config{SecretID: cfg.SecretID, SecretKey: cfg.SecretKey, Region: tencent.DefaultRegion, Endpoint: url})
	} else {
		w.cloud, err = aliyun.New(aliyun.Config{AccessKeyID: cfg.AliyunAccessKeyID, AccessKeySecret: cfg.AliyunAccessKeySecret, Region: aliyun.DefaultRegion, Endpoint: url})
	}
	if err != nil {
		t.Fatal(err)
	}
	w.farm, err = sim.Start(sim.Options{Dir: t.TempDir(), Kind: kind, Count: boards, Baud: 921600, Cloud: url, MQTT: broker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.farm.Close() })
	return w
}

func (w *productWorld) product(platform string) string {
	if platform == "tencent" {
		return testProduct
	}
	return "a1Prod"
}

// run burns every board in mode and then verifies them (registering
// themselves, checked on the platform, logging in over MQTT).
func (w *productWorld) run(t *testing.T, platform string, mode Mode, productSecret string, tamperToken bool) (LineResult, VerifyResult) {
	t.Helper()
	ctx := context.Background()
	product := w.product(platform)
	format, err := templates.Lookup(platform + "-at")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, b := range w.farm.Boards() {
		paths = append(paths, b.Path())
	}
	ports := func() ([]string, error) { return paths, nil }
	open := w.open(platform)
	lr, err := RunLine(ctx, LineOptions{Ledger: w.ledger, Platform: platform, Product: product, Format: format, Station: "t",
		Ports: ports, Open: open, Once: true, OpTimeout: 10 * time.Second,
		Mode: mode, ProductSecret: productSecret, NameFrom: "mac", Region: w.cloud.Region()})
	if err != nil {
		t.Fatal(err)
	}
	tokenLogin := MQTTTokenLogin(w.broker)
	if tamperToken {
		tokenLogin = func(ctx context.Context, c registry.Credential, cid, token string) error {
			tampered := "x" + token[1:]
			if token[0] == 'x' { // a fixed replacement would now and then equal it
				tampered = "y" + token[1:]
			}
			return MQTTTokenLogin(w.broker)(ctx, c, cid, tampered)
		}
	}
	vr, err := Verify(ctx, VerifyOptions{Ledger: w.ledger, Platform: platform, Product: product, Ports: ports, Open: open,
		Cloud: w.cloud, Login: MQTTLogin(w.broker), TokenLogin: tokenLogin,
		Mode: mode, ProductSecret: productSecret, Register: true, OpTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return lr, vr
}

// open opens the world's boards with a label scanner at each port that
// types the board's MAC (the Aliyun IDMAU firmware tells none), and the
// emulator as the station's registration endpoint.
func (w *productWorld) open(platform string) OpenBoard {
	labels := map[string]*LabelScanner{}
	for _, b := range w.farm.Boards() {
		labels[b.Path()] = NewLabelScanner(strings.NewReader(strings.Repeat(b.MAC()+"\n", 8)))
	}
	return OpenATBoardWith(platform, 921600, ATBoardOptions{RegisterURL: w.url, ConnectWait: 5 * time.Second,
		Labels: func(port string) *LabelScanner { return labels[port] }})
}

func (w *productWorld) secret(t *testing.T, platform string) string {
	p, err := w.cloud.(registry.ProductInfo).Product(context.Background(), w.product(platform))
	if err != nil {
		t.Fatal(err)
	}
	return p.Secret
}

// preCreate creates the boards' own names on the platform and in the ledger.
func (w *productWorld) preCreate(t *testing.T, platform string) []string {
	var list []string
	for _, b := range w.farm.Boards() {
		n, _ := BoardName("mac", "", b.MAC(), "")
		list = append(list, n)
	}
	if _, err := Create(context.Background(), CreateOptions{Platform: w.cloud, Ledger: w.ledger, Product: w.product(platform), Names: list}); err != nil {
		t.Fatal(err)
	}
	return list
}

func failuresMention(vr VerifyResult, s string) bool {
	return strings.Contains(strings.Join(vr.Failures, "\n"), s)
}

func TestModePreregisteredTencent(t *testing.T) {
	w := newProductWorld(t, "tencent", "tencent-at", emulator.ProductSettings{DynamicRegistration: true}, 2)
	list := w.preCreate(t, "tencent")
	// The second board's name disappears from the platform: not pre-registered any more.
	if err := w.cloud.DeleteDevice(context.Background(), testProduct, list[1]); err != nil {
		t.Fatal(err)
	}
	lr, vr := w.run(t, "tencent", ModePreregistered, w.secret(t, "tencent"), false)
	if lr.Burned != 2 {
		t.Fatalf("line: %+v", lr)
	}
	// The AT command set's §8.3 code for a name not pre-created.
	if vr.Verified != 1 || vr.Failed != 1 || !failuresMention(vr, "(code 1020)") {
		t.Fatalf("verify: %+v, want 1 verified and the platform's 1020 for the other", vr)
	}
}

func TestModeAutocreateTencent(t *testing.T) {
	w := newProductWorld(t, "tencent", "tencent-at", emulator.ProductSettings{DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 1}, 2)
	lr, vr := w.run(t, "tencent", ModeAutocreate, w.secret(t, "tencent"), false)
	if lr.Burned != 2 {
		t.Fatalf("line: %+v", lr)
	}
	if vr.Verified != 1 || vr.Failed != 1 || !failuresMention(vr, "(code 1031)") {
		t.Fatalf("verify: %+v, want 1 verified and the quota refusal for the other", vr)
	}
	if n := len(w.emu.TencentDeviceNames(testProduct)); n != 1 {
		t.Errorf("the platform created %d devices, want 1 (quota)", n)
	}
}

// Aliyun product-preregistered on IDMAU AT boards: the module cannot
// register itself, so verify pre-registers its name at the platform's HTTPS
// endpoint, writes the issued DeviceSecret, and the module logs in
// (AT+IDMCON, AT+IDMSTA? 2); the platform shows it online with the board's
// secret, which replaced the one create stored. A second verify is refused
// by the platform: the device has connected.
func TestModePreregisteredAliyun(t *testing.T) {
	w := newProductWorld(t, "aliyun", "aliyun-at", emulator.ProductSettings{DynamicRegistration: true}, 1)
	list := w.preCreate(t, "aliyun")
	created, _ := w.emu.AliyunDevice("a1Prod", list[0])
	lr, vr := w.run(t, "aliyun", ModePreregistered, w.secret(t, "aliyun"), false)
	if lr.Burned != 1 || vr.Verified != 1 {
		t.Fatalf("line %+v, verify %+v", lr, vr)
	}
	now, _ := w.emu.AliyunDevice("a1Prod", list[0])
	if fl := w.farm.Boards()[0].Flash(); fl.DeviceSecret != now || now == created {
		t.Fatalf("the board holds the platform's new secret %v (fresh %v)", fl.DeviceSecret == now, now != created)
	}
	if st, _ := w.emu.DeviceStatus("aliyun", "a1Prod", list[0]); !st.Activated || !st.Online {
		t.Fatalf("platform status %+v", st)
	}
	_, vr = w.run(t, "aliyun", ModePreregistered, w.secret(t, "aliyun"), false)
	if vr.Failed != 1 || !failuresMention(vr, "6289") || !failuresMention(vr, "device is already active") {
		t.Fatalf("second verify %+v: want the platform's refusal of an activated device", vr)
	}
}

func TestModePreregisteredAliyunWrongSecret(t *testing.T) {
	w := newProductWorld(t, "aliyun", "aliyun-at", emulator.ProductSettings{DynamicRegistration: true}, 1)
	w.preCreate(t, "aliyun")
	lr, vr := w.run(t, "aliyun", ModePreregistered, "not-the-product-secret", false)
	if lr.Burned != 1 || vr.Failed != 1 || !failuresMention(vr, "dynamic registration") || !failuresMention(vr, "6292") {
		t.Fatalf("wrong secret: line %+v, verify %+v, want the registration refused", lr, vr)
	}
	if fl := w.farm.Boards()[0].Flash(); fl.DeviceSecret != "" {
		t.Fatal("a refused registration wrote a device secret")
	}
}

// Registration-free on IDMAU AT boards is refused before the line starts
// (CheckBoardMode), and by the board should a line run it anyway.
func TestModeRegistrationFreeAliyunATRefused(t *testing.T) {
	if err := CheckBoardMode(ModeRegistrationFree, "aliyun-at"); !errors.Is(err, ErrModeBoard) || !strings.Contains(err.Error(), "ClientID") {
		t.Fatalf("CheckBoardMode: %v", err)
	}
	for _, m := range []Mode{ModeDevice, ModePreregistered} {
		if err := CheckBoardMode(m, "aliyun-at"); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
	}
	w := newProductWorld(t, "aliyun", "aliyun-at", emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true}, 1)
	// Not the board's fault: verify leaves it unjudged, with the reason.
	_, vr := w.run(t, "aliyun", ModeRegistrationFree, w.secret(t, "aliyun"), false)
	if vr.NotChecked != 1 || !strings.Contains(strings.Join(vr.Unchecked, "\n"), "registration-free") {
		t.Fatalf("verify %+v", vr)
	}
}

// Pre-registered mode: a board whose own name was never created is refused
// on the line with a message that says what to do; the others go on.
func TestLineRefusesNameNotPreregistered(t *testing.T) {
	w := newProductWorld(t, "tencent", "tencent-at", emulator.ProductSettings{DynamicRegistration: true}, 2)
	first, _ := BoardName("mac", "", w.farm.Boards()[0].MAC(), "")
	if _, err := Create(context.Background(), CreateOptions{Platform: w.cloud, Ledger: w.ledger, Product: testProduct, Names: []string{first}}); err != nil {
		t.Fatal(err)
	}
	format, _ := templates.Lookup("tencent-at")
	var paths []string
	for _, b := range w.farm.Boards() {
		paths = append(paths, b.Path())
	}
	var failures []string
	lr, err := RunLine(context.Background(), LineOptions{Ledger: w.ledger, Platform: "tencent", Product: testProduct, Format: format,
		Ports: func() ([]string, error) { return paths, nil }, Open: OpenATBoard("tencent", 921600), Once: true,
		Mode: ModePreregistered, ProductSecret: w.secret(t, "tencent"), NameFrom: "mac",
		Events: func(e Event) {
			if e.Stage == StageFailed {
				failures = append(failures, e.Err)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Burned != 1 || lr.Failed != 1 || len(failures) != 1 || !strings.Contains(failures[0], "not pre-registered") || !strings.Contains(failures[0], "iotburn create") {
		t.Fatalf("line %+v, failures %q", lr, failures)
	}
	if fl := w.farm.Boards()[1].Flash(); fl.ProductID != "" {
		t.Errorf("the refused board was written: %+v", fl.ProductID)
	}
}

// A pre-created Tencent device that registers itself before its first
// connect gets a fresh key, and the one create stored stops working (Tencent
// doc 1081/138031; the emulator does the same). After verify, the ledger
// holds the key the platform holds now, the one that logs in.
func TestPreregisteredTencentLedgerKeepsTheFreshKey(t *testing.T) {
	w := newProductWorld(t, "tencent", "tencent-at", emulator.ProductSettings{DynamicRegistration: true}, 1)
	list := w.preCreate(t, "tencent")
	created, ok := w.emu.TencentDevice(testProduct, list[0])
	if !ok || created == "" {
		t.Fatalf("no key on the platform for %s after create", list[0])
	}
	lr, vr := w.run(t, "tencent", ModePreregistered, w.secret(t, "tencent"), false)
	if lr.Burned != 1 || vr.Verified != 1 {
		t.Fatalf("line %+v, verify %+v", lr, vr)
	}
	now, _ := w.emu.TencentDevice(testProduct, list[0])
	if now == created {
		t.Fatalf("the platform kept create's key for %s: the test needs a re-registration to mean anything", list[0])
	}
	u, ok, err := w.ledger.UnitByHW(strings.ToLower(w.farm.Boards()[0].MAC()))
	if err != nil || !ok {
		t.Fatalf("no unit for the board: %v", err)
	}
	if u.Cred.DeviceSecret != now {
		t.Errorf("the ledger holds %s for %s, the platform %s (create's was %s)",
			registry.Fingerprint(u.Cred.DeviceSecret), list[0], registry.Fingerprint(now), registry.Fingerprint(created))
	}
}

// startEmulator gives cfg fresh cloud keys of both vendors and serves the
// emulator over HTTP and MQTT until the test ends.
func startEmulator(t *testing.T, cfg *emulator.Config) (emu *emulator.Emulator, url, broker string) {
	t.Helper()
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err := emulator.New(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	broker, err = emu.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	return emu, srv.URL, broker
}
