package at

import (
	"strings"
	"testing"
)

func TestParseDevInfo(t *testing.T) {
	for _, tc := range []struct {
		line string
		want DevInfo
		ok   bool
	}{
		{`+TCDEVINFOSET:1,"S3EUVBRJLB","test_device",110,"ap-guangzhou"`, DevInfo{TLSMode: 1, ProductID: "S3EUVBRJLB", DeviceName: "test_device", SecretBCC: 110, Region: "ap-guangzhou"}, true},
		{`+TCDEVINFOSET: 1, "S3EUVBRJLB", "test_device", 110, "ap-guangzhou"`, DevInfo{TLSMode: 1, ProductID: "S3EUVBRJLB", DeviceName: "test_device", SecretBCC: 110, Region: "ap-guangzhou"}, true},
		{`+TCDEVINFOSET:1,"S3EUVBRJLB","test_device",110`, DevInfo{TLSMode: 1, ProductID: "S3EUVBRJLB", DeviceName: "test_device", SecretBCC: 110, Region: ""}, true}, // old firmware, no region
		{`+TCDEVINFOSET:1,S3EUVBRJLB,test_device,110,ap-guangzhou`, DevInfo{TLSMode: 1, ProductID: "S3EUVBRJLB", DeviceName: "test_device", SecretBCC: 110, Region: "ap-guangzhou"}, true},
		{`+TCDEVINFOSET:1,"a\"b\,c","n",0,"r"`, DevInfo{TLSMode: 1, ProductID: `a"b,c`, DeviceName: "n", SecretBCC: 0, Region: "r"}, true},
		// A cellular module's certificate device (the M6315's report, case 9).
		{`+TCDEVINFOSET:2,"83X1JNA86X","test_VM_1","test_VM_1.crt"`, DevInfo{TLSMode: 2, ProductID: "83X1JNA86X", DeviceName: "test_VM_1", CertName: "test_VM_1.crt"}, true},
		{`+TCDEVINFOSET:1,"p","n","x.crt"`, DevInfo{}, false},
		{`+TCDEVINFOSET:x,"p","n",1`, DevInfo{}, false},
		{`+TCDEVINFOSET:1,"p","n",256`, DevInfo{}, false},
		{`+TCDEVINFOSET:1,"p"`, DevInfo{}, false},
		{`+TCDEVINFOSET:`, DevInfo{}, false},
	} {
		body, _ := cutResponse(tc.line, "+TCDEVINFOSET")
		got, ok := parseDevInfo(body)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseModule(t *testing.T) {
	// The reference's transcript of AT+TCMODULE.
	lines := []string{
		"Module HW name: ESP-WROOM-02D",
		"Module FW version: QCloud_AT_ESP8266_v2.1.0",
		"Module Mac addr: 84:F3:EB:56:0E:E9",
		"Module FW compiled time: Aug 18 2020 11:39:32",
		"Module Flash size: 2MB",
	}
	want := Identity{Module: "ESP-WROOM-02D", Firmware: "QCloud_AT_ESP8266_v2.1.0", MAC: "84:f3:eb:56:0e:e9"}
	if got := parseModule(lines); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The cellular module's (Tencent's test report of the M6315, case 11).
	cell := []string{
		"Module HW name: M6315_MOD_BOM_R001_20190508@H1",
		"Module FW version: M6315-PTCH0S00",
		"Module IMEI: 863924040143031",
		"Module FW compiled time: 20190827_152209",
		"Module Flash size:4MB",
	}
	wantCell := Identity{Module: "M6315_MOD_BOM_R001_20190508@H1", Firmware: "M6315-PTCH0S00", IMEI: "863924040143031"}
	if got := parseModule(cell); got != wantCell {
		t.Fatalf("got %+v, want %+v", got, wantCell)
	}
	if got := parseModule([]string{"Module IMEI: 863924040143032"}); got.IMEI != "" { // check digit wrong
		t.Fatalf("took IMEI %q", got.IMEI)
	}
	for in, want := range map[string]string{
		"84f3eb560ee9": "84:f3:eb:56:0e:e9", "84-F3-EB-56-0E-E9": "84:f3:eb:56:0e:e9",
		"84:f3:eb:56:0e": "", "zz:f3:eb:56:0e:e9": "", "": "",
	} {
		if got := normalizeMAC(in); got != want {
			t.Errorf("normalizeMAC(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseIMEI(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{[]string{"861234567890123"}, "861234567890123"},
		{[]string{"+CGSN: 861234567890123"}, "861234567890123"},
		{[]string{`+CGSN:"861234567890123"`}, "861234567890123"},
		{[]string{"junk", "12345"}, ""},
		{nil, ""},
	} {
		if got := parseIMEI(tc.lines); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.lines, got, tc.want)
		}
	}
}

func TestURCResult(t *testing.T) {
	for _, tc := range []struct {
		line, res string
		ok        bool
	}{
		{"+TCDEVINFOSET:OK", "OK", true},
		{"+TCDEVINFOSET: OK", "OK", true},
		{"+TCDEVINFOSET:FAIL,-1", "FAIL,-1", true},
		{"TCDEVINFOSET:FAIL202", "FAIL202", true}, // the doc's spelling, without '+'
		{`+TCDEVINFOSET:1,"p","n",1,"r"`, "", false},
		{"+TCPRDINFOSET:OK", "", false},
	} {
		res, ok := urcResult(tc.line, "+TCDEVINFOSET")
		if res != tc.res || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.line, res, ok, tc.res, tc.ok)
		}
	}
}

func TestCommandNameAndWords(t *testing.T) {
	for in, want := range map[string]string{
		`AT+TCDEVINFOSET=1,"p","n","s"`: "AT+TCDEVINFOSET",
		"AT+TCDEVINFOSET?":              "AT+TCDEVINFOSET",
		"ATE0":                          "ATE0",
		`"secret"`:                      "a script line",
	} {
		if got := commandName(in); got != want {
			t.Errorf("commandName(%q) = %q, want %q", in, got, want)
		}
	}
	sent := `AT+TCDEVINFOSET=1,"PID0000001","dev","s3cr3t-value"`
	got := boardWords([]string{"AT+TCDEVINFOSET=1,garbled", `junk "s3cr3t-value"`, "+CME ERROR: 5", "ERROR"}, sent)
	if strings.Contains(got, "s3cr3t") || got != "+CME ERROR: 5 / ERROR" {
		t.Fatalf("boardWords = %q", got)
	}
}

func TestScriptLines(t *testing.T) {
	items, err := scriptItems([]byte("# image\r\nATE0\r\n\r\n  AT+TCDEVINFOSET=1,\"a\",\"b\",\"c\"  \nAT"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.line)
	}
	want := []string{"ATE0", `AT+TCDEVINFOSET=1,"a","b","c"`, "AT"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	for in, want := range map[string]string{`AT+TCDEVINFOSET=1`: "+TCDEVINFOSET", "AT+X=?": "", "AT+X?": "", "ATE0": ""} {
		if got, _ := setURC(in); got != want {
			t.Errorf("setURC(%q) = %q, want %q", in, got, want)
		}
	}
}

// The parsers read bytes from a board that may be broken or hostile: they
// must never panic, and what they accept must be self-consistent.
func FuzzParseDevInfo(f *testing.F) {
	for _, s := range []string{`1,"S3EUVBRJLB","test_device",110,"ap-guangzhou"`, `1,"p","n",1`, `"\`, `,,,,`, `1,"a\"b",c,255,"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		d, ok := parseDevInfo(body)
		if ok && (d.SecretBCC < 0 || d.SecretBCC > 255) {
			t.Fatalf("accepted BCC %d", d.SecretBCC)
		}
		if !ok && d != (DevInfo{}) {
			t.Fatalf("rejected but returned %+v", d)
		}
	})
}

func FuzzParseModule(f *testing.F) {
	f.Add("Module HW name: ESP-WROOM-02D\nModule Mac addr: 84:f3:eb:56:0e:e9\nModule FW version: x")
	f.Add("Module Mac addr: ::::\n:\n\x00")
	f.Fuzz(func(t *testing.T, block string) {
		id := parseModule(strings.Split(block, "\n"))
		if id.MAC != "" && normalizeMAC(id.MAC) != id.MAC {
			t.Fatalf("MAC %q not normalized", id.MAC)
		}
		_ = parseIMEI(strings.Split(block, "\n"))
		_ = id.HardwareID()
	})
}
