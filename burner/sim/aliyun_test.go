package sim

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The IDMAU firmware's answers, as the YoC sources frame them (aliyun.go's
// type comment): AT_BACK_OK "\r\nOK\r\n", AT_BACK_ERR "\r\nERROR\r\n" (also
// atserver's answer to an unknown command), AT_RESP_CME_ERR(50)
// "\r\n+CME ERROR:50\r\n", and idm_au_handler's read-back
// "+IDMAU:%s,%s,%s,%s\r\nOK\r\n".
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
		{name: "echo off at boot", in: "AT\r\n", want: okR},
		{name: "no ATE0: unknown, ERROR", in: "ATE0\r\nATE1\r\nAT\r\n", want: errR + errR + okR},
		{name: "AT+ECHO", in: "AT+ECHO=ON\r\nAT\r\nAT+ECHO?\r\nAT+ECHO=OFF\r\nAT\r\n",
			want: okR + "AT\r\n" + okR + "AT+ECHO?\r\n\r\n+ECHO:ON\r\nOK\r\n" + "AT+ECHO=OFF\r\n" + okR + okR},
		{name: "bytes before AT ignored, CR ends a command", in: "xyzAT\rAT\n", want: okR + okR},
		{name: "commands the firmware lacks", in: "AT+GMR\r\nAT+CIPSTAMAC?\r\nAT+CGSN\r\nAT+IDMREG\r\nAT+IDMTOKEN?\r\nAT+RESTORE\r\n",
			want: strings.Repeat(errR, 6)},
		{name: "CGMR and FWVER print the OS version", in: "AT+CGMR\r\nAT+CGMR=?\r\nAT+FWVER\r\nAT+CGMR?\r\n",
			want: "\r\n+CGMR:" + aliyunOSVersion + "\r\nOK\r\n" + "\r\n+CGMR:" + aliyunOSVersion + "\r\nOK\r\n" + "\r\n+FWVER:" + aliyunOSVersion + "\r\nOK\r\n"},
		{name: "MODEL: ERROR until set", in: "AT+MODEL?\r\nAT+MODEL=W800\r\nAT+MODEL?\r\n",
			want: errR + okR + "\r\n+MODEL:W800\r\nOK\r\n"},
		{name: "DEVINFO stores what the host writes", in: "AT+DEVINFO?\r\nAT+DEVINFO=?\r\n" + `AT+DEVINFO="lot 7"` + "\r\nAT+DEVINFO?\r\n",
			want: "\r\n+DEVINFO:\r\nOK\r\n" + `+DEVINFO:"str"` + "\r\n" + okR + "\r\n+DEVINFO:lot 7\r\nOK\r\n"},
		{name: "fresh board", in: "AT+IDMAU?\r\n", want: "+IDMAU:,,,\r\nOK\r\n"},
		{name: "set then query: OK and no URC", in: set + "\r\nAT+IDMAU?\r\n",
			want:  okR + "+IDMAU:a1X2bEnP82z,example1,ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe,\r\nOK\r\n",
			flash: triple},
		{name: "product secret", in: `AT+IDMAU="pk","dn","","7jluWm1zql7bt8qK"` + "\r\nAT+IDMAU?\r\n",
			want:  okR + "+IDMAU:pk,dn,,7jluWm1zql7bt8qK\r\nOK\r\n",
			flash: Flash{ProductID: "pk", DeviceName: "dn", ProductSecret: "7jluWm1zql7bt8qK"}},
		{name: "fifth field (PID variant) is ignored", in: `AT+IDMAU="pk","dn","ds","ps","21937002"` + "\r\n",
			want: okR, flash: Flash{ProductID: "pk", DeviceName: "dn", DeviceSecret: "ds", ProductSecret: "ps"}},
		{name: "max lengths", in: `AT+IDMAU="` + q(20, "P") + `","` + q(32, "n") + `","` + q(64, "s") + `","` + q(64, "p") + `"` + "\r\n",
			want: okR, flash: Flash{ProductID: q(20, "P"), DeviceName: q(32, "n"), DeviceSecret: q(64, "s"), ProductSecret: q(64, "p")}},
		{name: "limits and quoting", in: `AT+IDMAU="` + q(21, "P") + `","n","s",""` + "\r\n" +
			`AT+IDMAU="P","` + q(33, "n") + `","s",""` + "\r\n" +
			`AT+IDMAU="P","n","` + q(65, "s") + `",""` + "\r\n" +
			`AT+IDMAU="P","n","s","` + q(65, "p") + `"` + "\r\n" +
			`AT+IDMAU="P","n","s"` + "\r\n" + // three fields: no `","` after DS
			`AT+IDMAU=P,"n","s",""` + "\r\n" + // must start with a quote
			`AT+IDMAU="P","n","s","` + "\r\n" + // unterminated
			`AT+IDMAU="P", "n","s",""` + "\r\n" + // a blank breaks the `","` split
			`AT+IDMAU=` + "\r\n",
			want: strings.Repeat(cme50, 9)},
		{name: "forms a handler does not take: silence", in: "AT+IDMAU=?\r\nAT+IDMAU\r\nAT+IDMSTA\r\nAT+IDMCON?\r\nAT\r\n", want: okR},
		{name: "test forms of IDMCON, IDMCLS, IDMSTA", in: "AT+IDMCON=?\r\nAT+IDMCLS=?\r\nAT+IDMSTA=?\r\n", want: okR + okR + okR},
		{name: "not connected", in: "AT+IDMSTA?\r\n", want: "\r\n+IDMSTA:0\r\nOK\r\n"},
		{name: "IDMCON without a DeviceSecret: OK, never connects", in: `AT+IDMAU="pk","dn","","ps"` + "\r\nAT+IDMCON\r\nAT+IDMSTA?\r\n",
			want: okR + okR + "\r\n+IDMSTA:0\r\nOK\r\n", flash: Flash{ProductID: "pk", DeviceName: "dn", ProductSecret: "ps"}},
		{name: "IDMCON without a ProductSecret: the same", in: set + "\r\nAT+IDMCON\r\nAT+IDMSTA?\r\n",
			want: okR + okR + "\r\n+IDMSTA:0\r\nOK\r\n", flash: triple},
		{name: "fail-write fault: OK, nothing stored", flt: FaultFailWrite, in: set + "\r\nAT+IDMAU?\r\n",
			want: okR + "+IDMAU:,,,\r\nOK\r\n"},
		{name: "flash error", cerr: errors.New("disk full"), in: set + "\r\n", want: "\r\n+CME ERROR:100\r\n"},
		{name: "empty write wipes", in: set + "\r\n" + `AT+IDMAU="","","",""` + "\r\n", want: okR + okR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHost{flt: tc.flt, commitErr: tc.cerr, bf: boardFile{MAC: "24:0a:c4:01:02:03", IMEI: "860000000000009"}}
			fw := newAliyunAT(h)
			for i := 0; i < len(tc.in); i++ { // byte by byte: chunking must not matter
				fw.receive([]byte{tc.in[i]})
			}
			if got := h.sent(); got != tc.want {
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
