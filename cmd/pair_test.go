package cmd

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

// pairLedger is a ledger holding two gateways of GWPK and sub-devices
// s0000…s1500 of SUBPK, as create leaves them.
func pairLedger(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "iotburn.db")
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	add := func(product string, names []string) {
		r, err := l.Journal("aliyun", product, names)
		if err != nil {
			t.Fatal(err)
		}
		var creds []registry.Credential
		for _, n := range names {
			creds = append(creds, registry.Credential{Platform: "aliyun", ProductID: product, DeviceName: n, DeviceSecret: "S3CRET-" + n, Region: "cn-shanghai"})
		}
		if _, err := l.Complete(r.ID, creds); err != nil {
			t.Fatal(err)
		}
	}
	add("GWPK", []string{"gw1", "gw2"})
	var subs []string
	for i := range ledger.MaxSubDevices + 1 {
		subs = append(subs, fmt.Sprintf("s%04d", i))
	}
	add("SUBPK", subs)
	return path
}

func TestPairCommand(t *testing.T) {
	path := pairLedger(t)
	dir := t.TempDir()
	var many []string
	for i := range ledger.MaxSubDevices + 1 {
		many = append(many, fmt.Sprintf("s%04d", i))
	}
	tooMany := writeFile(t, dir, "kit.txt", strings.Join(many, "\n")+"\n")
	L := []string{"--ledger", path, "pair", "--platform", "aliyun"}
	ok := func(args ...string) string {
		t.Helper()
		out, errOut, err := run(t, append(L, args...)...)
		if err != nil {
			t.Fatalf("pair %v: %v\n%s", args, err, errOut)
		}
		return out
	}
	out := ok("--product", "GWPK", "--gateway", "gw1", "--sub-product", "SUBPK", "--sub", "s0000", "--sub", "s0001")
	if !strings.Contains(out, "(2 new); it has 2 of at most 1500") {
		t.Errorf("pair said %q", out)
	}
	lines := checkJSON(t, "pair again", ok("--json", "--product", "GWPK", "--gateway", "gw1", "--sub-product", "SUBPK", "--sub", "s0001"))
	if last := lines[len(lines)-1]; last["command"] != "pair" || last["added"] != 0.0 || last["sub_devices"] != 2.0 {
		t.Errorf("pair again --json: %v, want 0 added, 2 sub-devices", last)
	}

	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"bound to another gateway", []string{"--product", "GWPK", "--gateway", "gw2", "--sub-product", "SUBPK", "--sub", "s0002", "--sub", "s0001"}, "paired with gateway GWPK/gw1"},
		{"a sub-device product as the gateway's", []string{"--product", "SUBPK", "--gateway", "s0000", "--sub-product", "GWPK", "--sub", "gw2"}, "cannot be a gateway"},
		{"the same product twice", []string{"--product", "GWPK", "--gateway", "gw2", "--sub-product", "GWPK", "--sub", "gw1"}, "a gateway product and a sub-device product are two"},
		{"no gateway", []string{"--product", "GWPK", "--sub-product", "SUBPK", "--sub", "s0003"}, "--gateway"},
		{"no sub-devices", []string{"--product", "GWPK", "--gateway", "gw2", "--sub-product", "SUBPK"}, "no sub-devices"},
		{"not created", []string{"--product", "GWPK", "--gateway", "gw2", "--sub-product", "SUBPK", "--sub", "s0003", "--sub", "nope"}, "create it first"},
		{"1,501 in a kit", []string{"--product", "GWPK", "--gateway", "gw2", "--sub-product", "SUBPK", "--names", tooMany}, "at most 1500"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errOut, err := run(t, append(L, c.args...)...)
			if exitCode(err) != exitUsage || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("exit %d, %v (%s); want exit %d saying %q", exitCode(err), err, errOut, exitUsage, c.says)
			}
		})
	}
	// Nothing the refusals touched was paired.
	lines = checkJSON(t, "pair --list", ok("--json", "--product", "GWPK", "--list"))
	if len(lines) != 2 || lines[0]["gateway"] != "gw1" || fmt.Sprint(lines[0]["sub_devices"]) != "[s0000 s0001]" {
		t.Fatalf("pairings after the refusals: %v, want gw1 with s0000 and s0001 alone", lines)
	}
}

// batch --kit refuses, before any board is opened or anything claimed, a
// product none of whose gateways has a kit and a format with no place for
// one (exit 2); once a kit is paired the same flags get past the check.
func TestBatchKitRefusals(t *testing.T) {
	path := pairLedger(t)
	L := []string{"--ledger", path, "batch", "--platform", "aliyun", "--product", "GWPK", "--ports", filepath.Join(t.TempDir(), "tty*"), "--once", "--kit"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "nvs"}, "no sub-devices paired"},
		{[]string{"--format", "aliyun-at", "--hw-id-from", "scan", "--scanner", "sim"}, "no place for a gateway's kit"},
	} {
		_, _, err := run(t, append(L, tc.args...)...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("batch --kit %v: %v, want a usage error saying %q", tc.args, err, tc.want)
		}
	}
	if _, _, err := run(t, "--ledger", path, "pair", "--platform", "aliyun", "--product", "GWPK", "--gateway", "gw1", "--sub-product", "SUBPK", "--sub", "s0001"); err != nil {
		t.Fatal(err)
	}
	// Past the kit check, the line finds no board on the ports.
	if _, _, err := run(t, append(L, "--format", "nvs")...); err == nil || strings.Contains(err.Error(), "kit") {
		t.Errorf("batch --kit with a kit paired: %v, want the line's own refusal (no ports)", err)
	}
	l, err := ledger.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if c, err := l.Counts("aliyun", "GWPK"); err != nil || c.Free != 2 {
		t.Fatalf("after the refusals: %+v, %v; want both gateways free", c, err)
	}
}
