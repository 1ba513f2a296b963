package at_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/registry/tencent"
	"github.com/iotburn/iotburn/templates"
)

const (
	regTCProduct  = "ABCDEFGHIJ"
	regAliProduct = "a1RegTest01"
)

// regCloud runs the emulator over real HTTP (httptest) and its real MQTT
// broker, with dynamic registration switched on for every product.
func regCloud(t *testing.T, dr emulator.ProductSettings) (*emulator.Emulator, *httptest.Server, string, emulator.Config) {
	t.Helper()
	cfg := emulator.Config{Products: []string{regTCProduct}, AliyunProducts: []string{regAliProduct},
		TaskDelay: -1, RateLimit: -1, DynReg: dr}
	cfg.SecretID, cfg.SecretKey = emulator.NewKeyPair()
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = emulator.NewAliyunKeyPair()
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(func() { srv.Close(); emu.Close() })
	broker, err := emu.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	return emu, srv, broker, cfg
}

// createDevices creates names on the platform through iotburn's own vendor
// client (the same batch API the line uses) and waits for the batch.
func createDevices(t *testing.T, p registry.Platform, product string, names ...string) {
	t.Helper()
	c := ctx(t)
	task, err := p.StartBatch(c, product, names)
	if err != nil {
		t.Fatal(err)
	}
	for {
		done, err := p.BatchDone(c, product, task)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// regFarm starts one board of kind in dir, pointed at the cloud.
func regFarm(t *testing.T, dir, kind, cloud, broker string) *sim.Farm {
	t.Helper()
	f, err := sim.Start(sim.Options{Dir: dir, Kind: kind, Count: 1, Baud: sim.Unpaced, Cloud: cloud, MQTT: broker})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func regOpen(t *testing.T, b *sim.Board, dl at.Dialect) *at.Driver {
	t.Helper()
	d := open(t, b, 0)
	d.Dialect = dl
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return d
}

// burn renders c with the real template and runs it on the board.
func burn(t *testing.T, d *at.Driver, f templates.Format, c registry.Credential) {
	t.Helper()
	img, err := f.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RunScript(ctx(t), img); err != nil {
		t.Fatal(err)
	}
}

// noSecret fails when err's text holds one of the secrets.
// otherFirst changes a random secret's first character for certain (a fixed
// replacement would equal it now and then: a flaky test).
func otherFirst(s string) string {
	if s[0] == 'x' {
		return "y" + s[1:]
	}
	return "x" + s[1:]
}

func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error leaks a secret: %v", err)
		}
	}
}

func TestTencentRegister(t *testing.T) {
	emu, srv, _, cfg := regCloud(t, emulator.ProductSettings{DynamicRegistration: true})
	client, err := tencent.New(tencent.Config{SecretID: cfg.SecretID, SecretKey: cfg.SecretKey, Region: "ap-guangzhou", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ps, ok := emu.ProductSecret("tencent", regTCProduct)
	if !ok {
		t.Fatal("no product secret")
	}
	dir := t.TempDir()
	f := regFarm(t, dir, "tencent-at", srv.URL, "")
	b := f.Boards()[0]
	// The board's own name, as the line reads it: its MAC without colons.
	name := strings.ReplaceAll(b.MAC(), ":", "")
	createDevices(t, client, regTCProduct, name)
	d := regOpen(t, b, at.Tencent)

	cred := registry.Credential{Platform: "tencent", ProductID: regTCProduct, DeviceName: name, ProductSecret: ps, Region: "ap-guangzhou"}
	burn(t, d, templates.TencentAT{}, cred)
	if pi, err := d.TencentProductInfo(ctx(t)); err != nil ||
		pi != (at.ProductInfo{TLSMode: 1, ProductID: regTCProduct, DeviceName: name, SecretBCC: at.BCC(ps), Region: "ap-guangzhou"}) {
		t.Fatalf("product info %+v, %v", pi, err)
	}
	if err := d.Verify(ctx(t), cred); err != nil {
		t.Fatalf("verify of the product-level credential: %v", err)
	}
	wrong := cred
	wrong.ProductSecret = ps[:len(ps)-1] + "#"
	err = d.Verify(ctx(t), wrong)
	if !errors.Is(err, at.ErrMismatch) || !strings.Contains(err.Error(), "product secret differs") {
		t.Fatalf("verify of another product secret: %v", err)
	}
	noSecret(t, err, ps, wrong.ProductSecret)
	if info, _ := d.TencentDevInfo(ctx(t)); info != (at.DevInfo{}) {
		t.Fatalf("device info before registering: %+v", info)
	}

	if err := d.Register(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	psk, ok := emu.TencentDevice(regTCProduct, name)
	if !ok || psk == "" {
		t.Fatal("the device is gone from the platform")
	}
	wantDev := at.DevInfo{TLSMode: 1, ProductID: regTCProduct, DeviceName: name, SecretBCC: at.BCC(psk), Region: "ap-guangzhou"}
	if info, err := d.TencentDevInfo(ctx(t)); err != nil || info != wantDev {
		t.Fatalf("after registering: %+v, %v; want %+v", info, err, wantDev)
	}
	if fl := b.Flash(); fl.DeviceSecret != psk {
		t.Fatal("the board's flash does not hold the platform's PSK")
	}
	// The product info stays, so verify of what was burned still passes.
	if err := d.Verify(ctx(t), cred); err != nil {
		t.Fatal(err)
	}

	// Restart: a new simulator on the same directory keeps what was obtained.
	f.Close()
	if fi, err := os.Stat(filepath.Join(dir, "board-00.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("flash file: %v %v", fi, err)
	}
	f = regFarm(t, dir, "tencent-at", srv.URL, "")
	d = regOpen(t, f.Boards()[0], at.Tencent)
	if info, err := d.TencentDevInfo(ctx(t)); err != nil || info != wantDev {
		t.Fatalf("after restart: %+v, %v", info, err)
	}

	// A name the platform does not hold, auto-create off: the vendor's code.
	ghost := cred
	ghost.DeviceName = "ghost01"
	burn(t, d, templates.TencentAT{}, ghost)
	err = d.Register(ctx(t), "")
	if !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "ResourceNotFound.DeviceNotExist") {
		t.Fatalf("register of an unknown name: %v", err)
	}
	noSecret(t, err, ps, psk)
	if _, ok := emu.TencentDevice(regTCProduct, "ghost01"); ok {
		t.Fatal("a refused registration created the device")
	}

	// Auto-create on, quota 1: the unknown name is created, the next refused.
	if err := emu.SetProductSettings("tencent", regTCProduct, emulator.ProductSettings{DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 1}); err != nil {
		t.Fatal(err)
	}
	if err := d.Register(ctx(t), ""); err != nil {
		t.Fatalf("auto-create: %v", err)
	}
	gpsk, ok := emu.TencentDevice(regTCProduct, "ghost01")
	if !ok {
		t.Fatal("auto-create did not create the device")
	}
	if info, err := d.TencentDevInfo(ctx(t)); err != nil || info.DeviceName != "ghost01" || info.SecretBCC != at.BCC(gpsk) {
		t.Fatalf("after auto-create: %+v, %v", info, err)
	}
	ghost.DeviceName = "ghost02"
	burn(t, d, templates.TencentAT{}, ghost)
	err = d.Register(ctx(t), "")
	if !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "LimitExceeded.DynamicRegisterDeviceExceedLimit") {
		t.Fatalf("register over the auto-create quota: %v", err)
	}
	if _, ok := emu.TencentDevice(regTCProduct, "ghost02"); ok {
		t.Fatal("over quota, the device was created anyway")
	}
	if err := d.Register(ctx(t), at.ModeRegistrationFree); err == nil {
		t.Fatal("registration-free on Tencent accepted")
	}
}

func TestRegisterWithoutCloud(t *testing.T) {
	for _, tc := range []struct {
		kind string
		dl   at.Dialect
		f    templates.Format
		mode string
	}{
		{"tencent-at", at.Tencent, templates.TencentAT{}, ""},
		{"aliyun-at", at.Aliyun, templates.AliyunAT{}, ""},
		{"aliyun-at", at.Aliyun, templates.AliyunAT{}, at.ModeRegistrationFree},
	} {
		t.Run(tc.kind+"/"+tc.mode, func(t *testing.T) {
			f := regFarm(t, t.TempDir(), tc.kind, "", "")
			d := regOpen(t, f.Boards()[0], tc.dl)
			// Nothing burned: the board has nothing to register with.
			if err := d.Register(ctx(t), tc.mode); !errors.Is(err, at.ErrRefused) {
				t.Fatalf("register on an empty board: %v", err)
			}
			burn(t, d, tc.f, registry.Credential{ProductID: "a1ABCDEFGH", DeviceName: "board01", ProductSecret: "0123456789abcdef"})
			err := d.Register(ctx(t), tc.mode)
			if !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "FAIL,-1") {
				t.Fatalf("register with no cloud: %v", err)
			}
		})
	}
}

func TestAliyunRegister(t *testing.T) {
	emu, srv, broker, cfg := regCloud(t, emulator.ProductSettings{DynamicRegistration: true, RegistrationFree: true})
	client, err := aliyun.New(aliyun.Config{AccessKeyID: cfg.AliyunAccessKeyID, AccessKeySecret: cfg.AliyunAccessKeySecret, Region: "cn-shanghai", Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ps, ok := emu.ProductSecret("aliyun", regAliProduct)
	if !ok {
		t.Fatal("no product secret")
	}
	dir := t.TempDir()
	f := regFarm(t, dir, "aliyun-at", srv.URL, broker)
	b := f.Boards()[0]
	name := strings.ReplaceAll(b.MAC(), ":", "")
	createDevices(t, client, regAliProduct, name)
	d := regOpen(t, b, at.Aliyun)

	// Pre-registration over HTTPS.
	cred := registry.Credential{Platform: "aliyun", ProductID: regAliProduct, DeviceName: name, ProductSecret: ps}
	burn(t, d, templates.AliyunAT{}, cred)
	if err := d.Verify(ctx(t), cred); err != nil {
		t.Fatalf("verify of the product-level credential: %v", err)
	}
	if err := d.Register(ctx(t), ""); err != nil {
		t.Fatal(err)
	}
	ds, ok := emu.AliyunDevice(regAliProduct, name)
	if !ok || ds == "" {
		t.Fatal("device gone")
	}
	want := at.AliyunInfo{ProductKey: regAliProduct, DeviceName: name, DeviceSecret: ds, ProductSecret: ps}
	if got, err := d.AliyunDevInfo(ctx(t)); err != nil || got != want {
		t.Fatalf("after registering: DeviceSecret matches %v, %v", got.DeviceSecret == ds, err)
	}
	if err := d.Verify(ctx(t), cred); err != nil {
		t.Fatalf("verify after registering: %v", err)
	}
	wrong := cred
	wrong.ProductSecret = otherFirst(ps)
	err = d.Verify(ctx(t), wrong)
	if !errors.Is(err, at.ErrMismatch) || !strings.Contains(err.Error(), "product secret differs") {
		t.Fatalf("verify of another product secret: %v", err)
	}
	noSecret(t, err, ps, wrong.ProductSecret, ds)
	// Registered: a second pre-registration is refused by the board itself.
	if err := d.Register(ctx(t), ""); !errors.Is(err, at.ErrRefused) {
		t.Fatalf("second registration: %v", err)
	}

	// Restart keeps the DeviceSecret.
	f.Close()
	f = regFarm(t, dir, "aliyun-at", srv.URL, broker)
	d = regOpen(t, f.Boards()[0], at.Aliyun)
	if got, err := d.AliyunDevInfo(ctx(t)); err != nil || got != want {
		t.Fatalf("after restart: DeviceSecret matches %v, %v", got.DeviceSecret == ds, err)
	}

	// A wrong ProductSecret: the cloud refuses, nothing is stored.
	bad := registry.Credential{Platform: "aliyun", ProductID: regAliProduct, DeviceName: name, ProductSecret: wrong.ProductSecret}
	burn(t, d, templates.AliyunAT{}, bad)
	err = d.Register(ctx(t), "")
	if !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "FAIL,") {
		t.Fatalf("register with a wrong product secret: %v", err)
	}
	noSecret(t, err, ps, bad.ProductSecret)
	if got, _ := d.AliyunDevInfo(ctx(t)); got.DeviceSecret != "" {
		t.Fatal("a refused registration stored a device secret")
	}
	if err := d.Register(ctx(t), at.ModeRegistrationFree); !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "FAIL,mqtt:") {
		t.Fatalf("registration-free with a wrong product secret: %v", err)
	}

	// Registration-free: a name the platform never saw gets a token that
	// logs in to the broker; a tampered token does not.
	free := registry.Credential{Platform: "aliyun", ProductID: regAliProduct, DeviceName: "free-board-01", ProductSecret: ps}
	burn(t, d, templates.AliyunAT{}, free)
	if cid, tok, err := d.AliyunToken(ctx(t)); err != nil || cid != "" || tok != "" {
		t.Fatalf("token before registering: %q %v", cid, err)
	}
	if err := d.Register(ctx(t), at.ModeRegistrationFree); err != nil {
		t.Fatal(err)
	}
	cid, tok, err := d.AliyunToken(ctx(t))
	if err != nil || cid == "" || tok == "" {
		t.Fatalf("token: %q, %v", cid, err)
	}
	login := func(token string) error {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		mcid, user, pass := devauth.AliyunMQTTToken(regAliProduct, "free-board-01", cid, token)
		return devauth.MQTTLogin(c, "aliyun", broker, nil, mcid, user, pass)
	}
	if err := login(tok); err != nil {
		t.Fatalf("login with the board's token: %v", err)
	}
	tampered := []byte(tok)
	tampered[0] ^= 1
	if err := login(string(tampered)); err == nil {
		t.Fatal("a tampered token logged in")
	} else if _, ok := devauth.Refused(err); !ok {
		t.Fatalf("tampered token: not a refusal: %v", err)
	}
	// Restart keeps the token.
	f.Close()
	f = regFarm(t, dir, "aliyun-at", srv.URL, broker)
	d = regOpen(t, f.Boards()[0], at.Aliyun)
	if c2, t2, err := d.AliyunToken(ctx(t)); err != nil || c2 != cid || t2 != tok {
		t.Fatalf("token after restart: %q, %v", c2, err)
	}
	if fl := f.Boards()[0].Flash(); fl.ClientID != cid || fl.DeviceToken != tok {
		t.Fatal("Flash does not show the token")
	}
}
