package cmd

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// The shapes the README documents for each "type" of --json line: the keys
// every line of that type carries.
var jsonShapes = map[string][]string{
	typeEvent:    {"event"},
	typeProgress: {"port", "bytes_done", "bytes_total"},
	typeWarning:  {"code", "message"},
	typeSummary:  {"command"},
	typeError:    {"code", "message"},
}

// checkJSON validates every line of a --json run: one object a line, a known
// type, that type's keys, seconds rather than nanoseconds, no secret.
func checkJSON(t *testing.T, what, out string, secrets ...string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for i, raw := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Errorf("%s: line %d is not a JSON object: %q", what, i+1, raw)
			continue
		}
		typ, _ := m["type"].(string)
		keys, ok := jsonShapes[typ]
		if !ok {
			t.Errorf("%s: line %d has type %q: %s", what, i+1, typ, raw)
			continue
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: %s line %d has no %q: %s", what, typ, i+1, k, raw)
			}
		}
		if strings.Contains(raw, "_ns\"") {
			t.Errorf("%s: line %d has a duration in nanoseconds: %s", what, i+1, raw)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(raw, s) {
				t.Errorf("%s: line %d shows a secret", what, i+1)
			}
		}
		lines = append(lines, m)
	}
	return lines
}

// Every command's --json output keeps the contract, errors included, and
// error lines carry a stable code; nothing is printed twice.
func TestJSONContract(t *testing.T) {
	a := newATLine(t, 2, "dev1", "dev2")
	emu, endpoint, dir, ledgerPath, farm, ports := a.emu, a.endpoint, a.dir, a.ledger, a.farm, a.ports
	var secrets []string
	for _, n := range []string{"dev1", "dev2"} {
		s, _ := emu.TencentDevice("ABCDEFGHIJ", n)
		secrets = append(secrets, s)
	}
	L := []string{"--ledger", ledgerPath, "--json"}
	for _, tc := range []struct {
		name    string
		args    []string
		summary string // the command of the last line, "" for none
		fails   string // the error code, "" for success
	}{
		{"batch", append(L, "batch", "--product", "ABCDEFGHIJ", "--ports", ports, "--once"), "batch", ""},
		{"verify", append(L, "verify", "--product", "ABCDEFGHIJ", "--ports", ports, "--endpoint", endpoint, "--cloud"), "verify", ""},
		{"burn", append(L, "burn", "--product", "ABCDEFGHIJ", "--port", farm.Boards()[0].Path()), "burn", ""},
		{"audit", append(L, "audit", "--out", filepath.Join(dir, "a.xlsx")), "audit", ""},
		{"devices", append(L, "devices", "--product", "ABCDEFGHIJ", "--endpoint", endpoint), "", ""},
		{"create", append(L, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, dir, "m.txt", "dev1\ndev3\n"), "--endpoint", endpoint), "create", ""},
		{"create dry run", append(L, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, dir, "d.txt", "dev1\ndev9\n"), "--dry-run"), "create", ""},
		{"image", append(L, "image", "--format", "tencent-json", "--product", "ABCDEFGHIJ", "--out", filepath.Join(dir, "img")), "", ""},
		{"ledger status", append(L, "ledger", "status"), "ledger status", ""},
		{"ledger check", append(L, "ledger", "check"), "ledger check", ""},
		{"ledger backup", append(L, "ledger", "backup", filepath.Join(dir, "backup.db")), "ledger backup", ""},
		{"ledger migrate", append(L, "ledger", "migrate"), "ledger migrate", ""},
		{"ledger release", append(L, "ledger", "release", "--expired"), "ledger release", ""},
		{"ledger export", append(L, "ledger", "export", "--product", "ABCDEFGHIJ"), "ledger export", ""},
		{"ledger void", append(L, "ledger", "void", "--product", "ABCDEFGHIJ", "--device", "dev3", "--reason", "test"), "ledger void", ""},
		{"ledger release of no board", append(L, "ledger", "release", "--hw", "24:0a:c4:00:00:99"), "", codeUsage},
		{"bad names file", append(L, "create", "--product", "ABCDEFGHIJ", "--names", writeFile(t, dir, "bad.csv", "Index,Code,Remark\n1,a,b\n"), "--endpoint", endpoint), "", codeUsage},
		{"usage error", append(L, "batch", "--product", "ABCDEFGHIJ", "--baud", "-5", "--ports", ports), "", codeUsage},
		{"no ports", append(L, "batch", "--product", "ABCDEFGHIJ", "--once", "--ports", filepath.Join(dir, "none*")), "", codeNoPorts},
		{"missing ledger", []string{"--ledger", filepath.Join(dir, "x.db"), "--json", "audit"}, "", codeLedger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := run(t, tc.args...)
			if (err != nil) != (tc.fails != "") {
				t.Fatalf("err %v\n%s%s", err, out, errOut)
			}
			if err != nil {
				// What Execute prints after the command returns.
				out += mustJSON(t, newErrorLine(err))
			}
			lines := checkJSON(t, tc.name, out, secrets...)
			if len(lines) == 0 {
				t.Fatal("no output")
			}
			last := lines[len(lines)-1]
			if tc.fails != "" {
				if last["type"] != typeError || last["code"] != tc.fails {
					t.Errorf("last line %v, want an error with code %s", last, tc.fails)
				}
				return
			}
			if tc.summary != "" && (last["type"] != typeSummary || last["command"] != tc.summary) {
				t.Errorf("last line %v, want the %s summary", last, tc.summary)
			}
			if n := strings.Count(out, `"type":"summary"`); tc.summary != "" && n != 1 {
				t.Errorf("%d summaries", n)
			}
		})
	}
}

func mustJSON(t *testing.T, v jsonLine) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}
