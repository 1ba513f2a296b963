package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// fakeHost runs a firmware without a pty: what it sends is collected, commits
// go to memory (or fail on demand).
type fakeHost struct {
	out       strings.Builder
	bf        boardFile
	flt       Fault
	commitErr error
	// Where registration goes; "" = nowhere (the commands then FAIL).
	cloudURL, mqttAddr string
}

func (h *fakeHost) send(p []byte)           { h.out.Write(p) }
func (h *fakeHost) file() boardFile         { return h.bf.clone() }
func (h *fakeHost) fault() Fault            { return h.flt }
func (h *fakeHost) logger() *slog.Logger    { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func (h *fakeHost) cloud() (string, string) { return h.cloudURL, h.mqttAddr }
func (h *fakeHost) ctx() context.Context    { return context.Background() }
func (h *fakeHost) commit(change func(*boardFile)) error {
	if h.commitErr != nil {
		return h.commitErr
	}
	change(&h.bf)
	return nil
}

const okR = "\r\nOK\r\n"
const errR = "\r\nERROR\r\n"

func TestTencentFirmware(t *testing.T) {
	set := `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","7WmFA/MEs+Fy+32QwJWtYw=="`
	for _, tc := range []struct {
		name  string
		in    string
		flt   Fault
		cerr  error
		want  string
		flash Flash
	}{
		{name: "echo on at boot", in: "AT\r\n", want: "AT\r\n" + okR},
		{name: "ATE0 stops echo of what follows", in: "ATE0\r\nAT\r\n", want: "ATE0\r\n" + okR + okR},
		{name: "LF alone", in: "ATE0\nAT\n", want: "ATE0\n" + okR + okR},
		{name: "CR alone does not end a command", in: "ATE0\r\nAT\rAT\r\n", want: "ATE0\r\n" + okR + errR},
		{name: "blank lines ignored", in: "ATE0\r\n\r\n\r\n", want: "ATE0\r\n" + okR},
		{name: "unknown", in: "ATE0\r\nAT+FOO\r\n", want: "ATE0\r\n" + okR + errR},
		{name: "parameters where none belong", in: "ATE0\r\nAT+TCMODULE=1\r\nAT+TCRESTORE?\r\n", want: "ATE0\r\n" + okR + errR + errR},
		{name: "over 256 bytes", in: "ATE0\r\nAT+" + strings.Repeat("X", 300) + "\r\nAT\r\n", want: "ATE0\r\n" + okR + errR + okR},
		{name: "256 bytes with CRLF is fine", in: "ATE0\r\n" + longSet(7, "r") + "\r\n", want: "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n",
			flash: Flash{TLSMode: 2, ProductID: strings.Repeat(",", 7) + "PPP", DeviceName: strings.Repeat(",", 48), DeviceSecret: strings.Repeat(",", 44), Region: strings.Repeat("r", 24)}},
		{name: "257 bytes is not", in: "ATE0\r\n" + longSet(8, "r") + "\r\n", want: "ATE0\r\n" + okR + errR},
		{name: "TCMODULE", in: "ATE0\r\nAT+TCMODULE\r\n", want: "ATE0\r\n" + okR +
			"Module HW name: ESP-WROOM-02D\r\nModule FW version: QCloud_AT_ESP8266_v2.1.0\r\nModule Mac addr: 24:0a:c4:01:02:03\r\n" +
			"Module FW compiled time: Aug 18 2020 11:39:32\r\nModule Flash size: 2MB\r\n" + okR},
		{name: "CGSN", in: "ATE0\r\nAT+CGSN\r\n", want: "ATE0\r\n" + okR + "860000000000009\r\n" + okR},
		{name: "empty query", in: "ATE0\r\nAT+TCDEVINFOSET?\r\nAT+TCPRDINFOSET?\r\n", want: "ATE0\r\n" + okR + okR + okR},
		{name: "set then query", in: "ATE0\r\n" + set + "\r\nAT+TCDEVINFOSET?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n" + `+TCDEVINFOSET:1,"ABCDEFGHIJ","dev001",1,"ap-guangzhou"` + "\r\n" + okR,
			flash: Flash{TLSMode: 1, ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}},
		{name: "escapes and region", in: `ATE0` + "\r\n" + `AT+TCDEVINFOSET=0,"P1","a\"b\,c\\d","s","ap-beijing"` + "\r\nAT+TCDEVINFOSET?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n" + `+TCDEVINFOSET:0,"P1","a\"b\,c\\d",115,"ap-beijing"` + "\r\n" + okR,
			flash: Flash{TLSMode: 0, ProductID: "P1", DeviceName: `a"b,c\d`, DeviceSecret: "s", Region: "ap-beijing"}},
		{name: "limits", in: "ATE0\r\n" +
			`AT+TCDEVINFOSET=1,"` + strings.Repeat("P", 11) + `","n","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","` + strings.Repeat("n", 49) + `","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","n","` + strings.Repeat("s", 45) + `"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","n","s","` + strings.Repeat("r", 25) + `"` + "\r\n" +
			`AT+TCDEVINFOSET=3,"P","n","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,P,"n","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","n"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P"x,"n","s"` + "\r\n",
			want: "ATE0\r\n" + okR + strings.Repeat(errR, 9)},
		{name: "max lengths accepted", in: "ATE0\r\n" + `AT+TCDEVINFOSET=2,"` + strings.Repeat("P", 10) + `","` + strings.Repeat("n", 48) + `","` + strings.Repeat("s", 44) + `","` + strings.Repeat("r", 24) + `"` + "\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n",
			flash: Flash{TLSMode: 2, ProductID: strings.Repeat("P", 10), DeviceName: strings.Repeat("n", 48), DeviceSecret: strings.Repeat("s", 44), Region: strings.Repeat("r", 24)}},
		{name: "fail-write fault", flt: FaultFailWrite, in: "ATE0\r\n" + set + "\r\n", want: "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:FAIL,-1\r\n"},
		{name: "flash error", cerr: errors.New("disk full"), in: "ATE0\r\n" + set + "\r\n", want: "ATE0\r\n" + okR + errR},
		{name: "product info", in: "ATE0\r\n" + `AT+TCPRDINFOSET=1,"CTQS08Y5LG","ZHNkIGRzZCA=","Dev01"` + "\r\nAT+TCPRDINFOSET?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCPRDINFOSET:OK\r\n" + `+TCPRDINFOSET:1,"CTQS08Y5LG",` + itoa(bcc("ZHNkIGRzZCA=")) + `,"Dev01","ap-guangzhou"` + "\r\n" + okR,
			flash: Flash{TLSMode: 1, ProductID: "CTQS08Y5LG", DeviceName: "Dev01", Region: "ap-guangzhou", ProductSecret: "ZHNkIGRzZCA="}},
		{name: "restore", in: "ATE0\r\n" + set + "\r\nAT+TCRESTORE\r\nAT+TCDEVINFOSET?\r\n", want: "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n" + okR + okR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHost{flt: tc.flt, commitErr: tc.cerr, bf: boardFile{MAC: "24:0a:c4:01:02:03", IMEI: "860000000000009"}}
			fw := newTencentAT(h)
			// Byte by byte: the firmware must not depend on how the wire chunks.
			for i := 0; i < len(tc.in); i++ {
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

func itoa(n int) string { return strconv.Itoa(n) }

// longSet builds a valid AT+TCDEVINFOSET at the length limits whose values
// are mostly escaped commas: 254 bytes with pidEsc = 7, one more per extra.
func longSet(pidEsc int, r string) string {
	esc := func(n int) string { return strings.Repeat(`\,`, n) }
	return `AT+TCDEVINFOSET=2,"` + esc(pidEsc) + strings.Repeat("P", 10-pidEsc) + `","` + esc(48) + `","` + esc(44) + `","` + strings.Repeat(r, 24) + `"`
}

func TestLongSetLength(t *testing.T) {
	if n := len(longSet(7, "r")); n != 254 {
		t.Fatalf("longSet is %d bytes, want 254", n)
	}
}

func TestIdentity(t *testing.T) {
	if !luhnValid("490154203237518") || luhnValid("490154203237519") { // a published IMEI example
		t.Fatal("luhn check is wrong")
	}
	for range 200 {
		if imei := newIMEI(); len(imei) != 15 || !luhnValid(imei) {
			t.Fatalf("bad IMEI %q", imei)
		}
		if mac := newMAC(); len(mac) != 17 || !strings.HasPrefix(mac, "24:0a:c4:") {
			t.Fatalf("bad MAC %q", mac)
		}
	}
}
