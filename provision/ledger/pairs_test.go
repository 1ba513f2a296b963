package ledger

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
)

func TestPair(t *testing.T) { eachEngine(t, testPair) }

func testPair(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "aliyun", "GWPK", "gw1", "gw2")
	seed(t, l, "aliyun", "SUBPK", names("s", 6)...)
	if n, err := l.Pair("aliyun", "GWPK", "gw1", "SUBPK", []string{"s000", "s001", "s002"}); err != nil || n != 3 {
		t.Fatalf("Pair = %d, %v; want 3, nil", n, err)
	}
	// The same kit again (a re-run after a crash): nothing new, no error.
	if n, err := l.Pair("aliyun", "GWPK", "gw1", "SUBPK", []string{"s002", "s001"}); err != nil || n != 0 {
		t.Fatalf("Pair again = %d, %v; want 0, nil", n, err)
	}
	refused := []struct {
		name              string
		gwProduct, gw, sp string
		subs              []string
		want              error
	}{
		{"bound to another gateway", "GWPK", "gw2", "SUBPK", []string{"s003", "s000"}, ErrPaired},
		{"a sub-device as a gateway", "SUBPK", "s000", "GWPK", []string{"gw2"}, ErrNotGateway},
		{"a gateway as a sub-device", "GWPK", "gw2", "GWPK", []string{"gw1"}, ErrNotGateway},
		{"unknown sub-device", "GWPK", "gw2", "SUBPK", []string{"s004", "nope"}, ErrNotFound},
		{"unknown gateway", "GWPK", "gw9", "SUBPK", []string{"s004"}, ErrNotFound},
	}
	for _, c := range refused {
		if n, err := l.Pair("aliyun", c.gwProduct, c.gw, c.sp, c.subs); !errors.Is(err, c.want) || n != 0 {
			t.Errorf("%s: Pair = %d, %v; want 0, %v", c.name, n, err, c.want)
		}
	}
	// A refusal changed nothing: s003 and s004 are paired with no one.
	got, err := l.Pairings("aliyun", "")
	if err != nil {
		t.Fatal(err)
	}
	want := []Pairing{{Platform: "aliyun", GatewayProduct: "GWPK", Gateway: "gw1", SubProduct: "SUBPK", SubDevices: []string{"s000", "s001", "s002"}}}
	if len(got) != 1 || got[0].Gateway != want[0].Gateway || !slices.Equal(got[0].SubDevices, want[0].SubDevices) {
		t.Fatalf("pairings after refusals: %+v, want %+v", got, want)
	}
	if p, err := l.SubDevicesOf("aliyun", "GWPK", "gw2"); err != nil || len(p.SubDevices) != 0 {
		t.Fatalf("gw2's sub-devices: %+v, %v; want none", p, err)
	}
	// The books refuse to move a sub-device to another gateway by hand.
	if _, err := rawExec(l, `UPDATE pairings SET gateway_id = gateway_id`); err == nil {
		t.Fatal("an UPDATE of a pairing was let through")
	}
	if probs, err := l.Check(t.Context()); err != nil || len(probs) != 0 {
		t.Fatalf("check: %v, %v", probs, err)
	}
}

// The 1,501st sub-device of one gateway is refused before anything is
// written, whether it comes alone or with others that would fit.
func TestPairLimit(t *testing.T) { eachEngine(t, testPairLimit) }

func testPairLimit(t *testing.T, e testEngine) {
	l := e.open(t)
	seed(t, l, "tencent", "GW", "gw1")
	subs := names("sub", MaxSubDevices+2)
	seed(t, l, "tencent", "SUB", subs...)
	if n, err := l.Pair("tencent", "GW", "gw1", "SUB", subs[:MaxSubDevices-1]); err != nil || n != MaxSubDevices-1 {
		t.Fatalf("Pair 1,499 = %d, %v", n, err)
	}
	if n, err := l.Pair("tencent", "GW", "gw1", "SUB", subs[MaxSubDevices-1:]); !errors.Is(err, ErrGatewayFull) || n != 0 {
		t.Fatalf("Pair to 1,502 = %d, %v; want 0, ErrGatewayFull", n, err)
	}
	if n, err := l.Pair("tencent", "GW", "gw1", "SUB", subs); !errors.Is(err, ErrGatewayFull) || n != 0 {
		t.Fatalf("Pair of 1,502 names = %d, %v; want 0, ErrGatewayFull", n, err)
	}
	if p, _ := l.SubDevicesOf("tencent", "GW", "gw1"); len(p.SubDevices) != MaxSubDevices-1 {
		t.Fatalf("after refusals gw1 has %d sub-devices, want 1,499", len(p.SubDevices))
	}
	if n, err := l.Pair("tencent", "GW", "gw1", "SUB", subs[MaxSubDevices-1:MaxSubDevices]); err != nil || n != 1 {
		t.Fatalf("the 1,500th = %d, %v; want 1, nil", n, err)
	}
}

// A pairing goes with its devices: onto the shared ledger (on their new
// ids) and into a backup of it.
func TestPairingsMoveAndBackUp(t *testing.T) {
	src := openTemp(t)
	seed(t, src, "aliyun", "OTHER", "x1", "x2") // ids on the shared ledger differ from the file's
	seed(t, src, "aliyun", "GWPK", "gw1")
	seed(t, src, "aliyun", "SUBPK", "s1", "s2")
	if _, err := src.Pair("aliyun", "GWPK", "gw1", "SUBPK", []string{"s2", "s1"}); err != nil {
		t.Fatal(err)
	}
	want := []Pairing{{Platform: "aliyun", GatewayProduct: "GWPK", Gateway: "gw1", SubProduct: "SUBPK", SubDevices: []string{"s1", "s2"}}}
	url := pgtest.NewDB(t)
	pg, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	seed(t, pg, "tencent", "SHARED", "t1", "t2", "t3")
	if _, err := src.MoveTo(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "backup.db")
	if _, err := pg.Backup(context.Background(), dest); err != nil {
		t.Fatal(err)
	}
	b, err := Open(dest)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for name, l := range map[string]*Ledger{"shared": pg, "backup": b} {
		got, err := l.Pairings("aliyun", "")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s ledger's pairings: %+v, %v; want %+v", name, got, err, want)
		}
	}
}
