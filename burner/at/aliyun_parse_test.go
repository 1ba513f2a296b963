package at

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseIDMAU(t *testing.T) {
	s64 := strings.Repeat("s", 64)
	for _, tc := range []struct {
		line string
		want AliyunInfo
		ok   bool
	}{
		// The handler's own format: bare values, empty where unset.
		{"+IDMAU:a1X2bEnP82z,example1,ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe,", AliyunInfo{"a1X2bEnP82z", "example1", "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe", ""}, true},
		{"+IDMAU:,,,", AliyunInfo{}, true},
		{"+IDMAU:pk,dn,,7jluWm1zql7bt8qK", AliyunInfo{"pk", "dn", "", "7jluWm1zql7bt8qK"}, true},
		// Spaced and quoted, as other Alibaba firmwares print a read-back.
		{`+IDMAU: "pk", "dn", "ds", ""`, AliyunInfo{"pk", "dn", "ds", ""}, true},
		{"+IDMAU:" + strings.Repeat("P", 20) + ",n," + s64 + "," + s64, AliyunInfo{strings.Repeat("P", 20), "n", s64, s64}, true},
		// A value with ',' cannot be told apart: refused, not guessed.
		{"+IDMAU:pk,d,n,ds,ps", AliyunInfo{}, false},
		{"+IDMAU:pk,dn,ds", AliyunInfo{}, false},
		{"+IDMAU:" + strings.Repeat("P", 21) + ",dn,ds,", AliyunInfo{}, false},
		{"+IDMAU:pk,dn," + s64 + "s,", AliyunInfo{}, false},
		{`+IDMAU:pk,d"n,ds,`, AliyunInfo{}, false},
		{`+IDMAU:"pk ",dn,ds,`, AliyunInfo{}, false}, // found by FuzzParseIDMAU
		{"+IDMAU:pk,d\x00n,ds,", AliyunInfo{}, false},
		{"+IDMAU:", AliyunInfo{}, false},
	} {
		body, _ := cutResponse(tc.line, "+IDMAU")
		got, ok := parseIDMAU(body)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%q: got %+v %v, want %+v %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// A barcode scanner's line: a MAC in any spelling, an IMEI (the published
// example 490154203237518 passes the check digit, ...519 does not), or a
// serial number.
func TestParseLabel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // HardwareID, "" = refused
	}{
		{"24:0A:C4:01:02:03", "24:0a:c4:01:02:03"},
		{"240ac4010203\r\n", "24:0a:c4:01:02:03"},
		{"24-0a-c4-01-02-03", "24:0a:c4:01:02:03"},
		{"490154203237518", "imei:490154203237518"},
		{"490154203237519", ""},
		{"SN-2024/000123", "sn:SN-2024/000123"},
		{"abc", ""},
		{"two words", ""},
		{"", ""},
	} {
		id, err := ParseLabel(tc.in)
		if got := id.HardwareID(); got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ParseLabel(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// firstValue reads "+NAME:<v>" as AT_BACK_RET_OK prints it, and keeps
// nothing it cannot print.
func TestFirstValue(t *testing.T) {
	if v := firstValue([]string{"+CGMR:YoC-7.4.3"}, "+CGMR"); v != "YoC-7.4.3" {
		t.Fatalf("%q", v)
	}
	if v := firstValue([]string{"+MODEL: W800 "}, "+MODEL"); v != "W800" {
		t.Fatalf("%q", v)
	}
	if v := firstValue([]string{"+CGMR:" + strings.Repeat("v", 65)}, "+CGMR"); v != "" {
		t.Fatalf("%q", v)
	}
	if v := firstValue([]string{"OK"}, "+CGMR"); v != "" {
		t.Fatalf("%q", v)
	}
}

func TestParseDialect(t *testing.T) {
	for in, want := range map[string]Dialect{"tencent": Tencent, "tencent-at": Tencent, "aliyun": Aliyun, "Aliyun-AT": Aliyun} {
		if got, err := ParseDialect(in); err != nil || got != want {
			t.Errorf("ParseDialect(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "esp32", "aliyun-json"} {
		if _, err := ParseDialect(in); err == nil {
			t.Errorf("ParseDialect(%q) accepted", in)
		}
	}
	if Tencent.String() != "tencent" || Aliyun.String() != "aliyun" || (New(&scriptedPort{}).Dialect != Tencent) {
		t.Fatal("names or New's default dialect changed")
	}
}

// TestAliyunScriptedModule: an IDMAU module as its source answers (no
// ATE0, +CGMR/+MODEL lines, a read-back that other builds may quote and
// space): Identify reads what there is and fails with ErrNoHardwareID; the
// URC-less write does not wait for "+IDMAU:OK"; an unasked +IDMSTA report
// in front of the read-back is passed over; Connect waits for +IDMSTA:2.
func TestAliyunScriptedModule(t *testing.T) {
	line := `AT+IDMAU="a1X2bEnP82z","example1","ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe",""`
	p := &scriptedPort{answers: map[string]string{
		"ATE0":       "\r\nERROR\r\n",
		"AT":         "\r\nOK\r\n",
		"AT+CGMR":    "\r\n+CGMR:YoC-7.4.3\r\nOK\r\n",
		"AT+MODEL?":  "\r\nERROR\r\n",
		line:         "\r\nOK\r\n",
		"AT+IDMAU?":  "\r\n+IDMSTA:0\r\nOK\r\n+IDMAU: \"a1X2bEnP82z\",\"example1\",\"ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe\",\"\"\r\nOK\r\n",
		"AT+IDMCON":  "\r\nOK\r\n",
		"AT+IDMSTA?": "\r\n+IDMSTA:2\r\nOK\r\n",
	}}
	d := NewDialect(p, Aliyun)
	d.Timeout = 300 * time.Millisecond
	d.ConnectWait = 300 * time.Millisecond // no unasked report here: then asked
	ctx := context.Background()
	if err := d.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := d.Identify(ctx)
	if !errors.Is(err, ErrNoHardwareID) || id.Firmware != "YoC-7.4.3" || id.Module != "" || id.HardwareID() != "" {
		t.Fatalf("%+v %v", id, err)
	}
	start := time.Now()
	if err := d.RunScript(ctx, []byte(line+"\r\n")); err != nil || time.Since(start) > d.Timeout {
		t.Fatalf("RunScript: %v after %v", err, time.Since(start))
	}
	if info, err := d.AliyunDevInfo(ctx); err != nil || info.DeviceSecret != "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" {
		t.Fatalf("%+v %v", info, err)
	}
	if err := d.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	// OK without the +IDMAU: line is not an empty board.
	p.answers["AT+IDMAU?"] = "\r\nOK\r\n"
	if _, err := d.AliyunDevInfo(ctx); err == nil {
		t.Fatal("a bare OK read as an empty board")
	}
	// The firmware does not register itself.
	if err := d.Register(ctx, ""); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Register on Aliyun: %v", err)
	}
}

// FuzzParseIDMAU: the read-back comes from a board that may be broken: never
// a panic, a refusal is the zero value, and what is accepted is within the
// firmware's limits, free of separators, and reads back the same when printed
// the way the handler prints it.
func FuzzParseIDMAU(f *testing.F) {
	for _, s := range []string{"a1X2bEnP82z,example1,ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe,", ",,,", `"pk", "dn","ds",""`, `",",",",`, "\"\x00,,,", "a,b,c,d,e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		got, ok := parseIDMAU(body)
		if !ok {
			if got != (AliyunInfo{}) {
				t.Fatalf("refused but returned %+v", got)
			}
			return
		}
		fields := []string{got.ProductKey, got.DeviceName, got.DeviceSecret, got.ProductSecret}
		for i, max := range []int{aliMaxPK, aliMaxDN, aliMaxDS, aliMaxPS} {
			if len(fields[i]) > max || strings.ContainsAny(fields[i], "\",") {
				t.Fatalf("accepted field %d %q", i, fields[i])
			}
		}
		if back, ok := parseIDMAU(strings.Join(fields, ",")); !ok || back != got {
			t.Fatalf("%q → %+v, printed back → %+v %v", body, got, back, ok)
		}
	})
}
