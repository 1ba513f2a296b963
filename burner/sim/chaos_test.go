package sim

import (
	"strings"

	"testing"
	"time"

	"go.bug.st/serial"
)

func TestParseChaos(t *testing.T) {
	c, err := ParseChaos("drop=0.01,garble=0.02, stall=2s@0.5,unplug-after=30s,reboot-after=1m,glitch=tcmodule,seed=7")
	if err != nil {
		t.Fatal(err)
	}
	want := Chaos{Drop: 0.01, Garble: 0.02, Stall: 2 * time.Second, StallP: 0.5, UnplugAfter: 30 * time.Second, RebootAfter: time.Minute, Glitch: "TCMODULE", Seed: 7}
	if c != want {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if c, _ := ParseChaos("stall=1s"); c.StallP != 0.01 {
		t.Errorf("stall without @P: %+v, want P 0.01", c)
	}
	for _, bad := range []string{"drop=2", "drop=x", "stall=-1s", "unplug-after=soon", "flood=1", "drop"} {
		if _, err := ParseChaos(bad); err == nil {
			t.Errorf("ParseChaos(%q) accepted", bad)
		}
	}
}

// glitch: the first AT+TCMODULE of a power cycle is answered ERROR and never
// reaches the firmware; the next one is answered by the firmware.
func TestChaosGlitch(t *testing.T) {
	f, err := Start(Options{Dir: t.TempDir(), Kind: "tencent-at", Count: 1, Baud: Unpaced, Chaos: Chaos{Glitch: "TCMODULE"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := serial.Open(f.Boards()[0].Path(), &serial.Mode{BaudRate: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cmd := func(line string) string {
		t.Helper()
		if _, err := p.Write([]byte(line + "\r\n")); err != nil {
			t.Fatal(err)
		}
		var got []byte
		buf := make([]byte, 256)
		p.SetReadTimeout(50 * time.Millisecond)
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
			n, _ := p.Read(buf)
			got = append(got, buf[:n]...)
			if strings.HasSuffix(string(got), "OK\r\n") || strings.HasSuffix(string(got), "ERROR\r\n") {
				break
			}
		}
		return string(got)
	}
	first := cmd("AT+TCMODULE")
	if first != "\r\nERROR\r\n" {
		t.Errorf("first AT+TCMODULE answered %q, want ERROR", first)
	}
	if second := cmd("AT+TCMODULE"); !strings.HasSuffix(second, "OK\r\n") {
		t.Errorf("second AT+TCMODULE answered %q, want the module's answer", second)
	}
}

// unplug-after: the board goes away after the time and comes back a second
// later, with its identity.
func TestChaosUnplug(t *testing.T) {
	f, err := Start(Options{Dir: t.TempDir(), Kind: "tencent-at", Count: 1, Baud: Unpaced, Chaos: Chaos{UnplugAfter: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := f.Boards()[0]
	gone := waitFor(t, 3*time.Second, func() bool { return !b.Plugged() })
	back := waitFor(t, 5*time.Second, func() bool { return b.Plugged() })
	if !gone || !back {
		t.Fatalf("unplugged %v, back %v", gone, back)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) bool {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
