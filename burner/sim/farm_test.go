package sim_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
)

const credLine = `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","7WmFA/MEs+Fy+32QwJWtYw=="`

func driver(t testing.TB, path string) *at.Driver {
	t.Helper()
	p, err := burner.Open(path, 921600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	d := at.New(p)
	d.Timeout = 500 * time.Millisecond
	if err := d.Hello(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestRestart: a board burned before the simulator stopped comes back with
// the same identity and flash, on a new pty behind the same link.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	opts := sim.Options{Dir: dir, Count: 2, Baud: 921600}
	f, err := sim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	b := f.Boards()[1]
	mac, imei, path := b.MAC(), b.IMEI(), b.Path()
	if f.Boards()[0].MAC() == mac || f.Boards()[0].IMEI() == imei {
		t.Fatal("two boards share an identity")
	}
	oldPTY, _ := os.Readlink(path)
	d := driver(t, path)
	if err := d.RunScript(context.Background(), []byte(credLine)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("link left behind after Close: %v", err)
	}

	f, err = sim.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b = f.Boards()[1]
	if b.MAC() != mac || b.IMEI() != imei || b.Path() != path {
		t.Fatalf("board came back as %s %s %s, was %s %s %s", b.Path(), b.MAC(), b.IMEI(), path, mac, imei)
	}
	if b.Flash().DeviceSecret != "7WmFA/MEs+Fy+32QwJWtYw==" {
		t.Fatalf("flash lost: %+v", b.Flash().DeviceName)
	}
	newPTY, _ := os.Readlink(path)
	if !strings.HasPrefix(newPTY, "/dev/pts/") || newPTY == oldPTY {
		t.Logf("pty %s → %s (the kernel may reuse a number)", oldPTY, newPTY)
	}
	d = driver(t, path)
	id, err := d.Identify(context.Background())
	if err != nil || id.MAC != mac || id.IMEI != imei {
		t.Fatalf("identify after restart: %+v %v", id, err)
	}
	cred := registry.Credential{ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}
	if err := d.VerifyTencent(context.Background(), cred); err != nil {
		t.Fatal(err)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	f, err := sim.Start(sim.Options{Dir: dir, Count: 1, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts sim.Options
		says string
	}{
		{"same dir twice", sim.Options{Dir: dir, Count: 1}, "in use by another simulator"},
		{"unknown kind", sim.Options{Dir: t.TempDir(), Kind: "nokia"}, "unknown board kind"},
		{"no dir", sim.Options{}, "no directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := sim.Start(tc.opts)
			if err == nil {
				g.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %q", err, tc.says)
			}
		})
	}
	f.Close()
	// Count 0 brings back what the directory holds.
	f, err = sim.Start(sim.Options{Dir: dir, Baud: sim.Unpaced})
	if err != nil || len(f.Boards()) != 1 {
		t.Fatalf("restart with Count 0: %v", err)
	}
	f.Close()
}

func TestUnplugReplug(t *testing.T) {
	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Count: 1, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.Boards()[0]
	if err := b.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(b.Path()); !os.IsNotExist(err) {
		t.Fatalf("link still there after Unplug: %v", err)
	}
	if err := b.Unplug(); err != nil { // twice is harmless
		t.Fatal(err)
	}
	if err := b.Replug(); err != nil {
		t.Fatal(err)
	}
	driver(t, b.Path()) // answers Hello
}

// BenchmarkPacing moves bytes through one board at 115200 baud: the client
// writes a stream of "AT\r\n" (echo off) while reading the "\r\nOK\r\n"
// answers. The board's transmit side carries 1.5× the bytes it receives, so
// it is the one at line rate: rx_B/s should sit just under 11520, never above.
func BenchmarkPacing(b *testing.B) {
	const baud = 115200
	f, err := sim.Start(sim.Options{Dir: b.TempDir(), Count: 1, Baud: baud})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	p, err := burner.Open(f.Boards()[0].Path(), baud)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	d := at.New(p)
	if err := d.Hello(context.Background()); err != nil {
		b.Fatal(err)
	}
	const cmds = 200 // 800 bytes out, 1200 back: ~0.1 s of line time
	out := []byte(strings.Repeat("AT\r\n", cmds))
	want := 6 * cmds
	buf := make([]byte, 4096)
	p.SetReadTimeout(time.Second)
	b.ResetTimer()
	start := time.Now()
	var rx, tx int
	for range b.N {
		go p.Write(out)
		tx += len(out)
		for got := 0; got < want; {
			n, err := p.Read(buf)
			if err != nil || n == 0 {
				b.Fatalf("read after %d of %d bytes: %v", got, want, err)
			}
			got += n
		}
		rx += want
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(rx)/el, "rx_B/s")
	b.ReportMetric(float64(tx)/el, "tx_B/s")
	b.ReportMetric(100*float64(rx)/el/(baud/10), "%line")
}
