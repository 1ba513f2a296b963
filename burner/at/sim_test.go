package at_test

import (
	"context"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry"
)

// The credential from the reference: its BCC is 1.
const (
	secret   = "7WmFA/MEs+Fy+32QwJWtYw=="
	credLine = `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","7WmFA/MEs+Fy+32QwJWtYw=="`
)

// farm starts n simulated boards in a fresh directory.
func farm(t testing.TB, n, baud int) *sim.Farm {
	t.Helper()
	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Count: n, Baud: baud})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// open opens a board's port through burner.Open, i.e. go.bug.st/serial, and
// wraps it in a driver with timeouts short enough for fault tests.
func open(t testing.TB, b *sim.Board, baud int) *at.Driver {
	t.Helper()
	if baud <= 0 {
		baud = burner.DefaultBaud
	}
	p, err := burner.Open(b.Path(), baud)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	d := at.New(p)
	d.Timeout = 400 * time.Millisecond
	d.Attempts = 2
	return d
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func credential() registry.Credential {
	return registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: secret}
}
