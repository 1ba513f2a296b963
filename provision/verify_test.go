package provision

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry/emulator"
)

func TestVerify(t *testing.T) {
	_, client := cloud(t, emulator.Config{})
	l := openLedger(t)
	ctx := context.Background()
	if _, err := Create(ctx, CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: names("dev", 3)}); err != nil {
		t.Fatal(err)
	}
	farm := startBoards(t, 3, 921600)
	lo := lineOpts(l, farm, 921600)
	if res, err := RunLine(ctx, lo); err != nil || res.Burned != 3 {
		t.Fatalf("burn: %+v %v", res, err)
	}
	boards := farm.Boards()

	// Tamper: wipe board 0's credential; delete board 1's device on the platform.
	p, err := burner.Open(boards[0].Path(), 921600)
	if err != nil {
		t.Fatal(err)
	}
	if err := at.New(p).Restore(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	u1, _, _ := l.UnitByHW(strings.ToLower(boards[1].MAC()))
	if err := client.DeleteDevice(ctx, testProduct, u1.Cred.DeviceName); err != nil {
		t.Fatal(err)
	}

	o := VerifyOptions{Ledger: l, Platform: "tencent", Product: testProduct, Cloud: client, Ports: lo.Ports, Open: lo.Open}
	res, err := Verify(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != 1 || res.Failed != 2 {
		t.Fatalf("got %+v, want 1 verified and 2 failed", res)
	}
	want := map[int]string{0: "checking the credential on the board", 1: "does not exist on the platform", 2: ""}
	for i, b := range boards {
		u, _, _ := l.UnitByHW(strings.ToLower(b.MAC()))
		switch {
		case want[i] == "" && u.State != ledger.Verified:
			t.Errorf("board %d: %s (%s), want verified", i, u.State, u.Error)
		case want[i] != "" && (u.State != ledger.Failed || !strings.Contains(u.Error, want[i])):
			t.Errorf("board %d: %s %q, want failed with %q", i, u.State, u.Error, want[i])
		}
	}

	// The whole batch, ledger against the platform, no boards: only the
	// verified unit is still burned/verified, and it passes.
	res, err = Verify(ctx, VerifyOptions{Ledger: l, Platform: "tencent", Product: testProduct, Cloud: client})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != 1 || res.Failed != 0 {
		t.Fatalf("whole batch: %+v", res)
	}
}

// verify --mqtt: each board's credential logs in to the emulator's broker
// through paho; a wrong secret is refused with the broker's reason.
func TestVerifyMQTT(t *testing.T) {
	emu, client := cloud(t, emulator.Config{})
	broker, err := emu.StartMQTT("")
	if err != nil {
		t.Fatal(err)
	}
	l := openLedger(t)
	ctx := context.Background()
	if _, err := Create(ctx, CreateOptions{Platform: client, Ledger: l, Product: testProduct, Names: names("dev", 2)}); err != nil {
		t.Fatal(err)
	}
	farm := startBoards(t, 2, 921600)
	lo := lineOpts(l, farm, 921600)
	if res, err := RunLine(ctx, lo); err != nil || res.Burned != 2 {
		t.Fatalf("burn: %+v %v", res, err)
	}
	var connected atomic.Int32
	res, err := Verify(ctx, VerifyOptions{Ledger: l, Platform: "tencent", Product: testProduct, Ports: lo.Ports, Open: lo.Open, Login: MQTTLogin(broker),
		Events: func(e Event) {
			if e.MQTT == "connected" {
				connected.Add(1)
			}
		}})
	if err != nil || res.Verified != 2 || connected.Load() != 2 {
		t.Fatalf("verify --mqtt: %+v %v, %d connected", res, err, connected.Load())
	}
	u, _, _ := l.UnitByHW(strings.ToLower(farm.Boards()[0].MAC()))
	bad := u.Cred
	bad.DeviceSecret = "AAAAAAAAAAAAAAAAAAAAAA=="
	err = MQTTLogin(broker)(ctx, bad)
	if err == nil || !strings.Contains(err.Error(), "bad user name or password") {
		t.Fatalf("wrong secret: %v", err)
	}
}
