package sim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestAliyunFirmware(t *testing.T) {
	const (
		set   = `AT+IDMAU="a1X2bEnP82z","example1","ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe",""`
		cme50 = "\r\n+CME ERROR:50\r\n"
	)
	triple := Flash{ProductID: "a1X2bEnP82z", DeviceName: "example1", DeviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe"}
	q := func(n int, c string) string { return strings.Repeat(c, n) }
	for _, tc := range []struct {
		name  string
		in    string
		flt   Fault
		cerr  error
		want  string
		flash Flash
	}{
		{name: "echo on at boot", in: "AT\r\n", want: "AT\r\n" + okR},
		{name: "ATE0 stops echo", in: "ATE0\r\nAT\r\n", want: "ATE0\r\n" + okR + okR},
		{name: "unknown, CGSN on a Wi-Fi module", in: "ATE0\r\nAT+TCMODULE\r\nAT+CGSN\r\n", want: "ATE0\r\n" + okR + errR + errR},
		{name: "GMR", in: "ATE0\r\nAT+GMR\r\n", want: "ATE0\r\n" + okR +
			"AT version:" + aliyunATVersion + "\r\nSDK version:v4.2.2\r\ncompile time:Jul  2 2021 11:54:43\r\nBin version:2.2.0(WROOM-32)\r\n" + okR},
		{name: "MAC", in: "ATE0\r\nAT+CIPSTAMAC?\r\nAT+CIPSTAMAC\r\nAT+GMR?\r\n", want: "ATE0\r\n" + okR + `+CIPSTAMAC:"24:0a:c4:01:02:03"` + "\r\n" + okR + errR + errR},
		{name: "fresh board", in: "ATE0\r\nAT+IDMAU?\r\n", want: "ATE0\r\n" + okR + "+IDMAU:,,,\r\nOK\r\n"},
		{name: "set then query: OK and no URC", in: "ATE0\r\n" + set + "\r\nAT+IDMAU?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+IDMAU:a1X2bEnP82z,example1,ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe,\r\nOK\r\n",
			flash: triple},
		{name: "product secret", in: "ATE0\r\n" + `AT+IDMAU="pk","dn","","7jluWm1zql7bt8qK"` + "\r\nAT+IDMAU?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+IDMAU:pk,dn,,7jluWm1zql7bt8qK\r\nOK\r\n",
			flash: Flash{ProductID: "pk", DeviceName: "dn", ProductSecret: "7jluWm1zql7bt8qK"}},
		{name: "fifth field (PID variant) is ignored", in: "ATE0\r\n" + `AT+IDMAU="pk","dn","ds","ps","21937002"` + "\r\n",
			want: "ATE0\r\n" + okR + okR, flash: Flash{ProductID: "pk", DeviceName: "dn", DeviceSecret: "ds", ProductSecret: "ps"}},
		{name: "max lengths", in: "ATE0\r\n" + `AT+IDMAU="` + q(20, "P") + `","` + q(32, "n") + `","` + q(64, "s") + `","` + q(64, "p") + `"` + "\r\n",
			want: "ATE0\r\n" + okR + okR, flash: Flash{ProductID: q(20, "P"), DeviceName: q(32, "n"), DeviceSecret: q(64, "s"), ProductSecret: q(64, "p")}},
		{name: "limits and quoting", in: "ATE0\r\n" +
			`AT+IDMAU="` + q(21, "P") + `","n","s",""` + "\r\n" +
			`AT+IDMAU="P","` + q(33, "n") + `","s",""` + "\r\n" +
			`AT+IDMAU="P","n","` + q(65, "s") + `",""` + "\r\n" +
			`AT+IDMAU="P","n","s","` + q(65, "p") + `"` + "\r\n" +
			`AT+IDMAU="P","n","s"` + "\r\n" + // three fields: no `","` after DS
			`AT+IDMAU=P,"n","s",""` + "\r\n" + // must start with a quote
			`AT+IDMAU="P","n","s","` + "\r\n" + // unterminated
			`AT+IDMAU="P", "n","s",""` + "\r\n" + // a blank breaks the `","` split
			`AT+IDMAU=` + "\r\n",
			want: "ATE0\r\n" + okR + strings.Repeat(cme50, 9)},
		{name: "no test or execute form: silence", in: "ATE0\r\nAT+IDMAU=?\r\nAT+IDMAU\r\nAT\r\n", want: "ATE0\r\n" + okR + okR},
		{name: "fail-write fault: OK, nothing stored", flt: FaultFailWrite, in: "ATE0\r\n" + set + "\r\nAT+IDMAU?\r\n",
			want: "ATE0\r\n" + okR + okR + "+IDMAU:,,,\r\nOK\r\n"},
		{name: "flash error", cerr: errors.New("disk full"), in: "ATE0\r\n" + set + "\r\n", want: "ATE0\r\n" + okR + "\r\n+CME ERROR:100\r\n"},
		{name: "restore", in: "ATE0\r\n" + set + "\r\nAT+RESTORE\r\nAT+IDMAU?\r\n", want: "ATE0\r\n" + okR + okR + okR + "+IDMAU:,,,\r\nOK\r\n"},
		{name: "empty write wipes too", in: "ATE0\r\n" + set + "\r\n" + `AT+IDMAU="","","",""` + "\r\n", want: "ATE0\r\n" + okR + okR + okR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHost{flt: tc.flt, commitErr: tc.cerr, bf: boardFile{MAC: "24:0a:c4:01:02:03", IMEI: "860000000000009"}}
			fw := newAliyunAT(h)
			for i := 0; i < len(tc.in); i++ { // byte by byte: chunking must not matter
				fw.receive([]byte{tc.in[i]})
			}
			if got := h.out.String(); got != tc.want {
				t.Errorf("answer\n got %q\nwant %q", got, tc.want)
			}
			if got := h.bf.flash(); got != tc.flash {
				t.Errorf("flash %+v, want %+v", got, tc.flash)
			}
		})
	}
}

// TestBoardFileSections: a Tencent board's file does not grow an aliyun
// section, and an Aliyun board's file holds the triple under "aliyun".
func TestBoardFileSections(t *testing.T) {
	raw, err := json.Marshal(boardFile{Version: 1, Kind: "tencent-at"})
	if err != nil || strings.Contains(string(raw), "aliyun") {
		t.Fatalf("%s %v", raw, err)
	}
	bf := boardFile{Version: 1, Kind: "aliyun-at", Aliyun: aliyunFlash{ProductKey: "pk", DeviceName: "dn", DeviceSecret: "ds"}}
	raw, _ = json.Marshal(bf)
	var back boardFile
	if err := json.Unmarshal(raw, &back); err != nil || back.flash() != (Flash{ProductID: "pk", DeviceName: "dn", DeviceSecret: "ds"}) ||
		!strings.Contains(string(raw), `"aliyun":{"product_key":"pk"`) {
		t.Fatalf("%s: %+v %v", raw, back, err)
	}
	if c := bf.clone(); c.Aliyun != bf.Aliyun {
		t.Fatal("clone lost the aliyun section")
	}
}
