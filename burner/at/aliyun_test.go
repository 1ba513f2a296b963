package at_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// The iotkit-embedded example triple (reference/aliyun.md §4).
const aliSecret = "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe"

func aliCred() registry.Credential {
	return registry.Credential{Platform: "aliyun", ProductID: "a1X2bEnP82z", DeviceName: "example1", DeviceSecret: aliSecret}
}

// aliImage is what the line sends: the real aliyun-at template's output.
func aliImage(t testing.TB, c registry.Credential) []byte {
	t.Helper()
	img, err := templates.AliyunAT{}.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func startKind(t testing.TB, dir, kind string, n, baud int) *sim.Farm {
	t.Helper()
	f, err := sim.Start(sim.Options{Dir: dir, Kind: kind, Count: n, Baud: baud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func aliFarm(t testing.TB, n, baud int) *sim.Farm {
	return startKind(t, t.TempDir(), "aliyun-at", n, baud)
}

// openAli is open with the Aliyun dialect.
func openAli(t testing.TB, b *sim.Board, baud int) *at.Driver {
	t.Helper()
	d := open(t, b, baud)
	d.Dialect = at.Aliyun
	return d
}

func TestAliyunHelloIdentify(t *testing.T) {
	f := aliFarm(t, 2, 921600)
	for _, b := range f.Boards() {
		d := openAli(t, b, 921600)
		if err := d.Hello(ctx(t)); err != nil {
			t.Fatal(err)
		}
		// The IDMAU firmware tells no MAC or IMEI: the version from
		// AT+CGMR, nothing from AT+MODEL? (unset), and ErrNoHardwareID.
		id, err := d.Identify(ctx(t))
		if !errors.Is(err, at.ErrNoHardwareID) || id.MAC != "" || id.IMEI != "" || id.HardwareID() != "" || id.Firmware == "" {
			t.Errorf("%s: identity %+v, %v", b.Path(), id, err)
		}
		// The Tencent commands mean nothing to this firmware: that dialect
		// must say so instead of inventing an identity.
		d.Dialect = at.Tencent
		if id, err := d.Identify(ctx(t)); !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "Tencent") {
			t.Fatalf("Tencent dialect on an Alibaba board: %+v, %v", id, err)
		}
	}
}

// TestAliyunBurnVerify is the line's happy path on a paced board with the
// real aliyun-at image: write, read back, the board's own file, a restart
// of the simulator, and a wipe.
func TestAliyunBurnVerify(t *testing.T) {
	dir := t.TempDir()
	f := startKind(t, dir, "aliyun-at", 1, 115200)
	b := f.Boards()[0]
	d := openAli(t, b, 115200)
	d.Timeout = at.DefaultTimeout
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if info, err := d.AliyunDevInfo(ctx(t)); err != nil || info != (at.AliyunInfo{}) {
		t.Fatalf("fresh board: %+v, %v; want zero", info, err)
	}
	cred := aliCred()
	start := time.Now()
	if err := d.RunScript(ctx(t), aliImage(t, cred)); err != nil {
		t.Fatal(err)
	}
	// No URC to wait for: the write ends at OK, well inside one timeout.
	if el := time.Since(start); el >= d.Timeout {
		t.Fatalf("RunScript took %v: it waited for a URC the module never sends", el)
	}
	info, err := d.AliyunDevInfo(ctx(t))
	if want := (at.AliyunInfo{ProductKey: "a1X2bEnP82z", DeviceName: "example1", DeviceSecret: aliSecret}); err != nil || info != want {
		t.Fatalf("read back %+v, %v; want %+v", info, err, want)
	}
	if err := d.VerifyAliyun(ctx(t), cred); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(ctx(t), cred); err != nil {
		t.Fatal(err)
	}

	// The board's own file, read as raw JSON, not through the simulator.
	path := filepath.Join(dir, "board-00.json")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("flash file: %v; want mode 0600", err)
	}
	raw, _ := os.ReadFile(path)
	var file struct {
		Kind   string `json:"kind"`
		Aliyun struct {
			ProductKey    string `json:"product_key"`
			DeviceName    string `json:"device_name"`
			DeviceSecret  string `json:"device_secret"`
			ProductSecret string `json:"product_secret"`
		} `json:"aliyun"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.Kind != "aliyun-at" || file.Aliyun.DeviceSecret != aliSecret ||
		file.Aliyun.ProductKey != cred.ProductID || file.Aliyun.DeviceName != cred.DeviceName || file.Aliyun.ProductSecret != "" {
		t.Fatalf("flash file holds %+v (%v)", file, err)
	}

	// Restart the simulator on the same directory: same board, same flash.
	mac := b.MAC()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if fl, err := sim.LoadFlash(dir); err != nil || fl[b.Path()].DeviceSecret != aliSecret || fl[b.Path()].ProductID != cred.ProductID {
		t.Fatalf("LoadFlash: %v", err)
	}
	f = startKind(t, dir, "aliyun-at", 1, 115200)
	b = f.Boards()[0]
	d = openAli(t, b, 115200)
	// The happy path: the production timeout, not the fault tests' 400 ms
	// (a flash write on a loaded machine took longer than that).
	d.Timeout = at.DefaultTimeout
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if b.MAC() != mac {
		t.Fatalf("after restart: MAC %s; want %s", b.MAC(), mac)
	}
	if err := d.Verify(ctx(t), cred); err != nil {
		t.Fatalf("flash lost across restart: %v", err)
	}

	if err := d.Restore(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if info, err := d.AliyunDevInfo(ctx(t)); err != nil || info != (at.AliyunInfo{}) {
		t.Fatalf("after restore: %+v, %v; want zero", info, err)
	}
	if err := d.Verify(ctx(t), cred); !errors.Is(err, at.ErrMismatch) {
		t.Fatalf("wiped board verified: %v", err)
	}
}

func TestAliyunVerifyMismatch(t *testing.T) {
	f := aliFarm(t, 1, sim.Unpaced)
	d := openAli(t, f.Boards()[0], 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	good := aliCred()
	if err := d.VerifyAliyun(ctx(t), good); !errors.Is(err, at.ErrMismatch) || !strings.Contains(err.Error(), "holds no Alibaba device triple") {
		t.Fatalf("empty board verified: %v", err)
	}
	if err := d.RunScript(ctx(t), aliImage(t, good)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field  string
		change func(*registry.Credential)
	}{
		{"product key", func(c *registry.Credential) { c.ProductID = "a1ZZZZZZZZZ" }},
		{"device name", func(c *registry.Credential) { c.DeviceName = "example2" }},
		{"device secret", func(c *registry.Credential) { c.DeviceSecret = "another-secret-value-0123456789ab" }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			want := good
			tc.change(&want)
			for name, verify := range map[string]func(context.Context, registry.Credential) error{"VerifyAliyun": d.VerifyAliyun, "Verify": d.Verify} {
				err := verify(ctx(t), want)
				if !errors.Is(err, at.ErrMismatch) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("%s: got %v, want a mismatch naming %q", name, err, tc.field)
				}
				for _, s := range []string{aliSecret, want.DeviceSecret} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("%s: error shows a secret: %v", name, err)
					}
				}
			}
		})
	}
}

// TestVerifyDispatch: Verify reads back with the credential's platform, not
// the driver's dialect, and refuses a platform it does not know.
func TestVerifyDispatch(t *testing.T) {
	f := aliFarm(t, 1, sim.Unpaced)
	d := openAli(t, f.Boards()[0], 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.RunScript(ctx(t), aliImage(t, aliCred())); err != nil {
		t.Fatal(err)
	}
	tc := aliCred()
	tc.Platform = "tencent" // AT+TCDEVINFOSET? on an Alibaba module: ERROR
	if err := d.Verify(ctx(t), tc); !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "AT+TCDEVINFOSET") {
		t.Fatalf("tencent credential on an Alibaba board: %v", err)
	}
	tc.Platform = "onenet"
	if err := d.Verify(ctx(t), tc); err == nil || !strings.Contains(err.Error(), "onenet") {
		t.Fatalf("unknown platform: %v", err)
	}
	tc.Platform = "" // the driver's own dialect
	if err := d.Verify(ctx(t), tc); err != nil {
		t.Fatal(err)
	}
}

// TestFaultsBothKinds runs the same faults on a Tencent and an Alibaba board,
// each with its own dialect and its own image: the error kinds must be the
// same, and no error may quote a secret or a device name.
func TestFaultsBothKinds(t *testing.T) {
	type board struct {
		kind    string
		dialect at.Dialect
		image   func(testing.TB) []byte
	}
	kinds := []board{
		{"tencent-at", at.Tencent, func(testing.TB) []byte { return []byte(credLine + "\r\n") }},
		{"aliyun-at", at.Aliyun, func(t testing.TB) []byte { return aliImage(t, aliCred()) }},
	}
	for _, tc := range []struct {
		name  string
		fault sim.Fault
		hello bool
		burn  bool // RunScript, else Hello
		is    error
	}{
		{name: "garble", fault: sim.FaultGarble, is: at.ErrGarbage},
		{name: "drop at hello", fault: sim.FaultDrop, is: at.ErrNoAnswer},
		{name: "drop mid-burn", fault: sim.FaultDrop, hello: true, burn: true, is: at.ErrNoAnswer},
		{name: "garble mid-burn", fault: sim.FaultGarble, hello: true, burn: true, is: at.ErrGarbage},
	} {
		for _, k := range kinds {
			t.Run(tc.name+"/"+k.kind, func(t *testing.T) {
				f := startKind(t, t.TempDir(), k.kind, 1, 115200)
				b := f.Boards()[0]
				d := open(t, b, 0)
				d.Dialect = k.dialect
				if tc.hello {
					if err := d.Hello(ctx(t)); err != nil {
						t.Fatal(err)
					}
				}
				b.SetFault(tc.fault)
				var err error
				if tc.burn {
					err = d.RunScript(context.Background(), k.image(t))
				} else {
					err = d.Hello(context.Background())
				}
				if !errors.Is(err, tc.is) {
					t.Fatalf("got %v, want %v", err, tc.is)
				}
				for _, s := range []string{secret, aliSecret, "dev001", "example1"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error quotes the command line: %v", err)
					}
				}
				if fl := b.Flash(); fl.DeviceSecret != "" {
					t.Errorf("a failed write stored %q", fl.DeviceName)
				}
			})
		}
	}
	for _, k := range kinds {
		t.Run("unplug mid-burn/"+k.kind, func(t *testing.T) {
			f := startKind(t, t.TempDir(), k.kind, 1, 115200)
			b := f.Boards()[0]
			d := open(t, b, 0)
			d.Dialect = k.dialect
			if err := d.Hello(ctx(t)); err != nil {
				t.Fatal(err)
			}
			script := []byte(strings.Repeat(string(k.image(t)), 500)) // seconds of line time at 115200
			go func() {
				for b.Flash().DeviceSecret == "" { // the first write has landed: mid-script
					time.Sleep(time.Millisecond)
				}
				b.Unplug()
			}()
			start := time.Now()
			err := d.RunScript(ctx(t), script)
			if !errors.Is(err, at.ErrVanished) || !strings.Contains(err.Error(), b.Path()) {
				t.Fatalf("got %v, want ErrVanished naming %s", err, b.Path())
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("noticed the unplug after %v", el)
			}
			if _, err := burner.Open(b.Path(), 115200); !errors.Is(err, burner.ErrNotExist) {
				t.Fatalf("open while unplugged: %v, want ErrNotExist", err)
			}
			if err := b.Replug(); err != nil {
				t.Fatal(err)
			}
			d = open(t, b, 0)
			d.Dialect = k.dialect
			if err := d.Hello(ctx(t)); err != nil {
				t.Fatal(err)
			}
			want := credential()
			if k.dialect == at.Aliyun {
				want = aliCred()
			}
			if err := d.Verify(ctx(t), want); err != nil {
				t.Fatalf("flash lost across unplug: %v", err)
			}
		})
	}
}

// TestAliyunFailWrite: the Alibaba handler answers OK whatever its flash
// did, so a worn flash passes the write and only the read-back catches it.
func TestAliyunFailWrite(t *testing.T) {
	f := aliFarm(t, 1, sim.Unpaced)
	b := f.Boards()[0]
	d := openAli(t, b, 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	b.SetFault(sim.FaultFailWrite)
	if err := d.RunScript(ctx(t), aliImage(t, aliCred())); err != nil {
		t.Fatalf("the module says OK to a failed write: %v", err)
	}
	if err := d.Verify(ctx(t), aliCred()); !errors.Is(err, at.ErrMismatch) {
		t.Fatalf("worn flash verified: %v", err)
	}
}

// TestAliyunRefused: a malformed write comes back as +CME ERROR:50 naming the
// command only.
func TestAliyunRefused(t *testing.T) {
	f := aliFarm(t, 1, sim.Unpaced)
	d := openAli(t, f.Boards()[0], 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for name, line := range map[string]string{
		"three fields":     `AT+IDMAU="a1X2bEnP82z","example1","sekrit-value"`,
		"secret too long":  `AT+IDMAU="a1X2bEnP82z","example1","` + strings.Repeat("S", 65) + `",""`,
		"unquoted":         `AT+IDMAU=a1X2bEnP82z,"example1","sekrit-value",""`,
		"key over 20 char": `AT+IDMAU="a1X2bEnP82zXXXXXXXXXX","example1","sekrit-value",""`,
	} {
		t.Run(name, func(t *testing.T) {
			err := d.RunScript(ctx(t), []byte(line))
			if !errors.Is(err, at.ErrRefused) || !strings.Contains(err.Error(), "AT+IDMAU") || !strings.Contains(err.Error(), "+CME ERROR:50") {
				t.Fatalf("got %v, want a refusal naming AT+IDMAU", err)
			}
			if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "example1") {
				t.Fatalf("error quotes the line: %v", err)
			}
		})
	}
	if fl := f.Boards()[0].Flash(); fl != (sim.Flash{}) {
		t.Fatalf("refused writes stored %+v", fl)
	}
}
