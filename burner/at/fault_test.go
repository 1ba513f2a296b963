package at_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
)

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fault    sim.Fault
		clientBd int  // 0 = the board's own baud
		hello    bool // run Hello before the fault (else the fault meets Hello)
		run      func(*at.Driver) error
		is       error
		says     []string
	}{
		{name: "garble", fault: sim.FaultGarble,
			run: func(d *at.Driver) error { return d.Hello(context.Background()) },
			is:  at.ErrGarbage, says: []string{"answers garbage", "--baud", "AT firmware"}},
		{name: "wrong baud", clientBd: 9600,
			run: func(d *at.Driver) error { return d.Hello(context.Background()) },
			is:  at.ErrGarbage, says: []string{"answers garbage", "--baud"}},
		{name: "drop at hello", fault: sim.FaultDrop,
			run: func(d *at.Driver) error { return d.Hello(context.Background()) },
			is:  at.ErrNoAnswer, says: []string{"no answer from", "powered and in AT mode"}},
		{name: "drop mid-burn", fault: sim.FaultDrop, hello: true,
			run: func(d *at.Driver) error { return d.RunScript(context.Background(), []byte(credLine)) },
			is:  at.ErrNoAnswer, says: []string{"no answer", "AT+TCDEVINFOSET"}},
		{name: "fail write", fault: sim.FaultFailWrite, hello: true,
			run: func(d *at.Driver) error { return d.RunScript(context.Background(), []byte(credLine)) },
			is:  at.ErrRefused, says: []string{"AT+TCDEVINFOSET", "FAIL"}},
		// Echo still on: the board sends the secret-bearing line back, and
		// the error must still not quote it.
		{name: "fail write with echo", fault: sim.FaultFailWrite,
			run: func(d *at.Driver) error { return d.RunScript(context.Background(), []byte(credLine)) },
			is:  at.ErrRefused, says: []string{"AT+TCDEVINFOSET", "FAIL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := farm(t, 1, 115200)
			b := f.Boards()[0]
			d := open(t, b, tc.clientBd)
			if tc.hello {
				if err := d.Hello(ctx(t)); err != nil {
					t.Fatal(err)
				}
			}
			b.SetFault(tc.fault)
			err := tc.run(d)
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "dev001") {
				t.Errorf("error quotes the command line: %v", err)
			}
			if fl := b.Flash(); fl.DeviceSecret != "" {
				t.Errorf("a failed write stored %q", fl.DeviceName)
			}
		})
	}
}

// TestUnplugMidBurn pulls the board while a long script is running: the
// driver must say the board vanished, and the board must work again once
// replugged and reopened.
func TestUnplugMidBurn(t *testing.T) {
	f := farm(t, 1, 115200)
	b := f.Boards()[0]
	d := open(t, b, 0)
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	script := strings.Repeat(credLine+"\n", 500) // ~9 s of line time at 115200
	go func() {
		for b.Flash().DeviceSecret == "" { // the first write has landed: we are mid-script
			time.Sleep(time.Millisecond)
		}
		b.Unplug()
	}()
	start := time.Now()
	err := d.RunScript(ctx(t), []byte(script))
	if !errors.Is(err, at.ErrVanished) || !strings.Contains(err.Error(), "vanished mid-burn: replug it") || !strings.Contains(err.Error(), b.Path()) {
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
	if err := d.Hello(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := d.VerifyTencent(ctx(t), credential()); err != nil {
		t.Fatalf("flash lost across unplug: %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	f := farm(t, 1, sim.Unpaced)
	b := f.Boards()[0]
	d := open(t, b, 0)
	d.Timeout = time.Minute
	b.SetFault(sim.FaultDrop)
	c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.RunScript(c, []byte(credLine))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("got %v after %v, want the context's deadline promptly", err, time.Since(start))
	}
}
