package cmd

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"
)

// utf16LE is s as Excel's "Unicode Text" export writes it: BOM, UTF-16LE.
func utf16LE(s string) []byte {
	out := binary.LittleEndian.AppendUint16(nil, 0xFEFF)
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// workbook writes rows into the first sheet of an .xlsx with excelize.
func workbook(t *testing.T, path string, rows [][]any) {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for r, row := range rows {
		for c, v := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("Sheet1", cell, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Names files as factories export them create exactly the names in them,
// never a header word, on the platform and in the ledger.
func TestCreateNamesFiles(t *testing.T) {
	emu, endpoint := startCloud(t, 5*time.Millisecond)
	dir := t.TempDir()
	gbkHeader := []byte{0xD0, 0xF2, 0xBA, 0xC5, ',', 0xD0, 0xF2, 0xC1, 0xD0, 0xBA, 0xC5, ',', 0xB1, 0xB8, 0xD7, 0xA2} // 序号,序列号,备注
	tests := []struct {
		name    string
		file    string
		body    []byte
		xlsx    [][]any
		args    []string
		product string // Tencent product unless aliyun
		aliyun  bool
		want    []string // every device the product has afterwards, by hand
	}{
		{name: "issue 11: Index,Serial Number,Remark", file: "a.csv", body: []byte("Index,Serial Number,Remark\n1,SN001,\n2,SN002,ok\n3,SN003,\n"),
			want: []string{"SN001", "SN002", "SN003"}},
		{name: "xlsx with numeric IMEIs", file: "b.xlsx", xlsx: [][]any{{"No.", "IMEI", "Remark"}, {1, int64(868139012345678), "x"}, {2, int64(868139012345686), nil}},
			want: []string{"SN001", "SN002", "SN003", "868139012345678", "868139012345686"}},
		{name: "UTF-16 tab-separated", file: "c.txt", body: utf16LE("MAC\tNote\r\n24:0a:c4:00:00:01\tok\r\n24:0a:c4:00:00:02\t\r\n"),
			want: []string{"SN001", "SN002", "SN003", "868139012345678", "868139012345686", "24:0a:c4:00:00:01", "24:0a:c4:00:00:02"}},
		{name: "GBK, semicolons, chosen column", file: "d.csv", aliyun: true,
			body: append(bytes.ReplaceAll(gbkHeader, []byte(","), []byte(";")), []byte("\r\n1;GB-0001;x\r\n2;GB-0002;y\r\n")...),
			args: []string{"--column", "2"}, want: []string{"GB-0001", "GB-0002"}},
		{name: "column by its header", file: "e.csv", aliyun: true, body: []byte("Index,Code,Remark\n1,CODE-1,\n2,CODE-2,\n"),
			args: []string{"--column", "code"}, want: []string{"GB-0001", "GB-0002", "CODE-1", "CODE-2"}},
	}
	ledgerPath := filepath.Join(dir, "l.db")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.file)
			if tt.xlsx != nil {
				workbook(t, p, tt.xlsx)
			} else if err := os.WriteFile(p, tt.body, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", p, "--endpoint", endpoint}
			if tt.aliyun {
				args = []string{"--ledger", ledgerPath, "create", "--platform", "aliyun", "--product", "a1Xyz", "--names", p, "--endpoint", endpoint}
			}
			out, _, err := run(t, append(args, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			got := emu.TencentDeviceNames("ABCDEFGHIJ")
			if tt.aliyun {
				got = emu.AliyunDeviceNames("a1Xyz")
			}
			if !slices.Equal(sorted(got), sorted(tt.want)) {
				t.Fatalf("platform has %q, want %q\n%s", got, tt.want, out)
			}
			if !strings.Contains(out, "names from column") {
				t.Errorf("the output does not say where the names came from:\n%s", out)
			}
		})
	}
}

// Files that would create wrong devices are refused before anything is
// sent, with the fix, as usage errors; and neither the platform nor the
// ledger changes.
func TestCreateNamesFileRefused(t *testing.T) {
	emu, endpoint := startCloud(t, 5*time.Millisecond)
	dir := t.TempDir()
	tests := []struct {
		name string
		body string
		args []string
		want []string
	}{
		{"unknown header", "Index,Code,Remark\n1,C-01,ok\n2,C-02,ok\n", nil, []string{`1 "Index", 2 "Code", 3 "Remark"`, "--column", "nothing was created"}},
		{"header word as a name", "Devices\ndev001\ndev002\n", nil, []string{`"Devices"`, "--header no", "nothing was created"}},
		{"scientific notation", "Index,IMEI\n1,8.68139E+14\n2,8.68139E+14\n", nil, []string{"line 2", "format the column as text in Excel", "nothing was created"}},
		{"duplicates", "SN\nS-1\nS-2\nS-1\n", nil, []string{"line 4", "duplicate of line 2", "nothing was created"}},
		{"no such column", "Index,SN\n1,S-1\n", []string{"--column", "IMEI"}, []string{`"IMEI"`, `1 "Index", 2 "SN"`, "nothing was created"}},
		{"bad --header", "S-1\n", []string{"--header", "maybe"}, []string{"auto, yes or no"}},
		{"several columns, no header", "S-1,x\nS-2,y\n", nil, []string{"no header", "--column N", "nothing was created"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledgerPath := filepath.Join(dir, "l-"+strings.ReplaceAll(tt.name, " ", "-")+".db")
			p := writeFile(t, dir, "n.csv", tt.body)
			args := append([]string{"--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", p, "--endpoint", endpoint}, tt.args...)
			_, _, err := run(t, args...)
			if err == nil {
				t.Fatal("accepted")
			}
			if code := exitCode(err); code != exitUsage {
				t.Errorf("exit code %d, want %d (usage)", code, exitUsage)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if n := len(emu.TencentDeviceNames("ABCDEFGHIJ")); n != 0 {
				t.Fatalf("the platform has %d devices", n)
			}
			if _, err := os.Stat(ledgerPath); err == nil {
				t.Fatal("a refused names file created a ledger")
			}
		})
	}
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// --dry-run prints what would be created (what the ledger has already is
// skipped) and creates nothing: no platform call, no cloud keys needed, no
// ledger created or changed.
func TestCreateDryRun(t *testing.T) {
	emu, endpoint := startCloud(t, 5*time.Millisecond)
	dir := t.TempDir()
	ledgerPath := filepath.Join(dir, "l.db")
	names := writeFile(t, dir, "n.csv", "Index,Serial Number\n1,SN001\n2,SN002\n3,SN003\n")

	out, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", names, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"would create 3", "create line 2  SN001", "create line 4  SN003", `column 2 "Serial Number"`, "nothing was created"} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run output lacks %q:\n%s", w, out)
		}
	}
	if _, err := os.Stat(ledgerPath); err == nil {
		t.Fatal("a dry run created the ledger")
	}

	// A real run of the first two, then a dry run of all three, without keys.
	first := writeFile(t, dir, "first.csv", "SN001\nSN002\n")
	if _, _, err := run(t, "--ledger", ledgerPath, "create", "--product", "ABCDEFGHIJ", "--names", first, "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, ledgerPath)
	t.Setenv("TENCENTCLOUD_SECRET_ID", "")
	t.Setenv("TENCENTCLOUD_SECRET_KEY", "")
	out, _, err = run(t, "--ledger", ledgerPath, "--json", "create", "--product", "ABCDEFGHIJ", "--names", names, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not one JSON object a line: %q", l)
		}
		lines = append(lines, m)
	}
	var actions []string
	for _, m := range lines[:len(lines)-1] {
		actions = append(actions, m["device_name"].(string)+":"+m["action"].(string))
	}
	if strings.Join(actions, " ") != "SN001:skip SN002:skip SN003:create" {
		t.Errorf("dry run actions %v", actions)
	}
	if s := lines[len(lines)-1]; s["type"] != "summary" || s["would_create"] != 1.0 || s["dry_run"] != true {
		t.Errorf("summary %v", s)
	}
	if got := sorted(emu.TencentDeviceNames("ABCDEFGHIJ")); !slices.Equal(got, []string{"SN001", "SN002"}) {
		t.Errorf("the platform has %q after a dry run", got)
	}
	if fileSum(t, ledgerPath) != before {
		t.Error("a dry run changed the ledger file")
	}
}
