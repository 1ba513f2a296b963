package at

import (
	"context"
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

func TestParseGMRAndMAC(t *testing.T) {
	// ESP-AT's AT+GMR layout.
	mod, fw := parseGMR([]string{
		"AT version:2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)",
		"SDK version:v4.2.2-76-gefa6eca",
		"compile time(3a696ba):Jul  2 2021 11:54:43",
		"Bin version:2.2.0(WROOM-32)",
	})
	if mod != "2.2.0(WROOM-32)" || fw != "2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)" {
		t.Fatalf("parseGMR: %q %q", mod, fw)
	}
	for in, want := range map[string]string{
		`+CIPSTAMAC:"24:0A:C4:01:02:03"`: "24:0a:c4:01:02:03",
		`+CIPSTAMAC: 240ac4010203`:       "24:0a:c4:01:02:03",
		`+CIPSTAMAC:"24:0a:c4"`:          "",
		`+CIPAPMAC:"24:0a:c4:01:02:03"`:  "",
	} {
		if got := parseStaMAC([]string{in}); got != want {
			t.Errorf("parseStaMAC(%q) = %q, want %q", in, got, want)
		}
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

// TestAliyunCellularModule: a cellular module with the Alibaba firmware has
// no ESP-AT commands but an IMEI, and quotes its read-back; the URC-less
// write must not wait for "+IDMAU:OK".
func TestAliyunCellularModule(t *testing.T) {
	line := `AT+IDMAU="a1X2bEnP82z","example1","ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe",""`
	p := &scriptedPort{answers: map[string]string{
		"ATE0":          "\r\nOK\r\n",
		"AT":            "\r\nOK\r\n",
		"AT+GMR":        "\r\nERROR\r\n",
		"AT+CIPSTAMAC?": "\r\nERROR\r\n",
		"AT+CGSN":       "\r\n+CGSN: 861234567890123\r\n\r\nOK\r\n",
		line:            "\r\nOK\r\n",
		"AT+IDMAU?":     "\r\n+IDMAU: \"a1X2bEnP82z\",\"example1\",\"ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe\",\"\"\r\nOK\r\n",
	}}
	d := NewDialect(p, Aliyun)
	d.Timeout = 300 * time.Millisecond
	ctx := context.Background()
	if err := d.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := d.Identify(ctx)
	if err != nil || id.HardwareID() != "imei:861234567890123" {
		t.Fatalf("%+v %v", id, err)
	}
	start := time.Now()
	if err := d.RunScript(ctx, []byte(line+"\r\n")); err != nil || time.Since(start) > d.Timeout {
		t.Fatalf("RunScript: %v after %v", err, time.Since(start))
	}
	if info, err := d.AliyunDevInfo(ctx); err != nil || info.DeviceSecret != "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe" {
		t.Fatalf("%+v %v", info, err)
	}
	// OK without the +IDMAU: line is not an empty board.
	p.answers["AT+IDMAU?"] = "\r\nOK\r\n"
	if _, err := d.AliyunDevInfo(ctx); err == nil {
		t.Fatal("a bare OK read as an empty board")
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
