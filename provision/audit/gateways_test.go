package audit

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

// A gateway burned on the line with its kit of two sub-devices, and one
// with a kit but no board yet: the Gateways sheet has a row per sub-device,
// each by fingerprint, and a workbook of another product has no such sheet.
func TestWriteGateways(t *testing.T) {
	l := line(t)
	create := func(product string, names ...string) {
		r, err := l.Journal("tencent", product, names)
		if err != nil {
			t.Fatal(err)
		}
		var creds []registry.Credential
		for _, n := range names {
			creds = append(creds, registry.Credential{Platform: "tencent", ProductID: product, DeviceName: n, DeviceSecret: "S3CRET-" + n, Region: "ap-guangzhou"})
		}
		if _, err := l.Complete(r.ID, creds); err != nil {
			t.Fatal(err)
		}
	}
	create("GW", "gw1", "gw2")
	create("SUB", "s1", "s2", "s3")
	u, err := l.Claim("tencent", "GW", "BB:00:00:00:00:01", "st1", "/dev/ttyUSB5")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Begin(u.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.Burned(u.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	for gw, kit := range map[string][]string{"gw1": {"s2", "s1"}, "gw2": {"s3"}} {
		if _, err := l.Pair("tencent", "GW", gw, "SUB", kit); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "audit.xlsx")
	sum, err := Write(l, path, Options{Filter: ledger.Filter{Product: "GW"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Gateways != 2 || sum.SubDevices != 3 {
		t.Errorf("summary: %d gateways, %d sub-devices; want 2 and 3", sum.Gateways, sum.SubDevices)
	}
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(SheetGateways)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"platform", "gateway product", "gateway", "gateway board", "gateway state", "sub-device product", "sub-device", "sub-device secret fingerprint"},
		{"tencent", "GW", "gw1", "BB:00:00:00:00:01", "burned", "SUB", "s1", registry.Fingerprint("S3CRET-s1")},
		{"tencent", "GW", "gw1", "BB:00:00:00:00:01", "burned", "SUB", "s2", registry.Fingerprint("S3CRET-s2")},
		{"tencent", "GW", "gw2", "", "no board", "SUB", "s3", registry.Fingerprint("S3CRET-s3")},
	}
	if len(rows) != len(want) {
		t.Fatalf("Gateways sheet %q, want %q", rows, want)
	}
	for i := range want {
		if !slices.Equal(pad(rows[i], len(want[i])), want[i]) {
			t.Errorf("row %d: %q, want %q", i+1, rows[i], want[i])
		}
	}
	if text := zipText(t, path); strings.Contains(text, "S3CRET-s") {
		t.Error("a sub-device's secret is in the workbook")
	}

	other := filepath.Join(t.TempDir(), "p1.xlsx")
	if _, err := Write(l, other, Options{Filter: ledger.Filter{Product: "P1"}}); err != nil {
		t.Fatal(err)
	}
	g, err := excelize.OpenFile(other)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if idx, _ := g.GetSheetIndex(SheetGateways); idx != -1 {
		t.Errorf("a workbook of product P1 has a Gateways sheet (%v)", g.GetSheetList())
	}
}
