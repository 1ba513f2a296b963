package sim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHost runs a firmware without a pty: what it sends is collected, commits
// go to memory (or fail on demand).
type fakeHost struct {
	mu        sync.Mutex // send may come from a firmware's timer or client goroutine
	out       strings.Builder
	bf        boardFile
	flt       Fault
	commitErr error
	// Where registration goes; "" = nowhere (the commands then FAIL).
	cloudURL, mqttAddr string
}

func (h *fakeHost) send(p []byte)           { h.mu.Lock(); h.out.Write(p); h.mu.Unlock() }
func (h *fakeHost) sent() string            { h.mu.Lock(); defer h.mu.Unlock(); return h.out.String() }
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

// The QCloud_AT answers the sources give (tencent.go's type comment): an
// unknown command as the real module's transcript shows it, and the CME
// codes of the AT command set's §8.2, with §1.2's one space after the colon.
const (
	unknownR = "\r\nERR CODE:0x01090000\r\nERROR\r\n"
	cme204   = "\r\n+CME ERROR: 204\r\n" // Parameter invalid
	cme207   = "\r\n+CME ERROR: 207\r\n" // Flash access error
	cme208   = "\r\n+CME ERROR: 208\r\n" // State error or not ready
)

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
		{name: "CR alone does not end a command", in: "ATE0\r\nAT\rAT\r\n", want: "ATE0\r\n" + okR + unknownR},
		{name: "blank lines ignored", in: "ATE0\r\n\r\n\r\n", want: "ATE0\r\n" + okR},
		{name: "unknown", in: "ATE0\r\nAT+FOO\r\nAT+TCCERTADD=?\r\n", want: "ATE0\r\n" + okR + unknownR + unknownR},
		{name: "test forms of TCDEVREG and TCRESTORE", in: "ATE0\r\nAT+TCDEVREG=?\r\nAT+TCRESTORE=?\r\n", want: "ATE0\r\n" + okR + okR + okR},
		{name: "TCDEVREG without product info", in: "ATE0\r\nAT+TCDEVREG\r\n", want: "ATE0\r\n" + okR + cme208},
		{name: "parameters where none belong", in: "ATE0\r\nAT+TCMODULE=1\r\nAT+TCRESTORE?\r\n", want: "ATE0\r\n" + okR + errR + errR},
		{name: "over 256 bytes", in: "ATE0\r\nAT+" + strings.Repeat("X", 300) + "\r\nAT\r\n", want: "ATE0\r\n" + okR + errR + okR},
		{name: "256 bytes with CRLF is fine", in: "ATE0\r\n" + longSet(7, "r") + "\r\n", want: "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n",
			flash: Flash{TLSMode: 1, ProductID: strings.Repeat(",", 7) + "PPP", DeviceName: strings.Repeat(",", 48), DeviceSecret: strings.Repeat(",", 44), Region: strings.Repeat("r", 24)}},
		{name: "257 bytes is not", in: "ATE0\r\n" + longSet(8, "r") + "\r\n", want: "ATE0\r\n" + okR + errR},
		{name: "TCMODULE", in: "ATE0\r\nAT+TCMODULE\r\n", want: "ATE0\r\n" + okR +
			"Module HW name: ESP-WROOM-02D\r\nModule FW version: QCloud_AT_ESP8266_v2.1.0\r\nModule Mac addr: 24:0a:c4:01:02:03\r\n" +
			"Module FW compiled time: Aug 18 2020 11:39:32\r\nModule Flash size: 2MB\r\n" + okR},
		{name: "CGSN", in: "ATE0\r\nAT+CGSN\r\n", want: "ATE0\r\n" + okR + "860000000000009\r\n" + okR},
		{name: "empty query", in: "ATE0\r\nAT+TCDEVINFOSET?\r\nAT+TCPRDINFOSET?\r\n", want: "ATE0\r\n" + okR + okR + okR},
		{name: "set then query", in: "ATE0\r\n" + set + "\r\nAT+TCDEVINFOSET?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n" + `+TCDEVINFOSET:1,"ABCDEFGHIJ","dev001",1,"ap-guangzhou"` + "\r\n" + okR,
			flash: Flash{TLSMode: 1, ProductID: "ABCDEFGHIJ", DeviceName: "dev001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}},
		{name: "escapes and region", in: `ATE0` + "\r\n" + `AT+TCDEVINFOSET=1,"P1","a\"b\,c\\d","s","ap-beijing"` + "\r\nAT+TCDEVINFOSET?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n" + `+TCDEVINFOSET:1,"P1","a\"b\,c\\d",115,"ap-beijing"` + "\r\n" + okR,
			flash: Flash{TLSMode: 1, ProductID: "P1", DeviceName: `a"b,c\d`, DeviceSecret: "s", Region: "ap-beijing"}},
		{name: "limits", in: "ATE0\r\n" +
			`AT+TCDEVINFOSET=1,"` + strings.Repeat("P", 11) + `","n","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","` + strings.Repeat("n", 49) + `","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","n","` + strings.Repeat("s", 45) + `"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","n","s","` + strings.Repeat("r", 25) + `"` + "\r\n" +
			`AT+TCDEVINFOSET=3,"P","n","s"` + "\r\n" +
			`AT+TCDEVINFOSET=0,"P","n","s"` + "\r\n" + // the ESP8266 takes mode 1 only
			`AT+TCDEVINFOSET=2,"P","n","n.crt"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,P,"n","s"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P","n"` + "\r\n" +
			`AT+TCDEVINFOSET=1,"P"x,"n","s"` + "\r\n",
			want: "ATE0\r\n" + okR + strings.Repeat(cme204, 11)},
		{name: "max lengths accepted", in: "ATE0\r\n" + `AT+TCDEVINFOSET=1,"` + strings.Repeat("P", 10) + `","` + strings.Repeat("n", 48) + `","` + strings.Repeat("s", 44) + `","` + strings.Repeat("r", 24) + `"` + "\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n",
			flash: Flash{TLSMode: 1, ProductID: strings.Repeat("P", 10), DeviceName: strings.Repeat("n", 48), DeviceSecret: strings.Repeat("s", 44), Region: strings.Repeat("r", 24)}},
		{name: "fail-write fault", flt: FaultFailWrite, in: "ATE0\r\n" + set + "\r\n", want: "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:FAIL,-1001\r\n"},
		{name: "flash error", cerr: errors.New("disk full"), in: "ATE0\r\n" + set + "\r\n", want: "ATE0\r\n" + okR + cme207},
		{name: "product info", in: "ATE0\r\n" + `AT+TCPRDINFOSET=1,"CTQS08Y5LG","ZHNkIGRzZCA=","Dev01"` + "\r\nAT+TCPRDINFOSET?\r\n",
			want:  "ATE0\r\n" + okR + okR + "+TCPRDINFOSET:OK\r\n" + `+TCPRDINFOSET:1,"CTQS08Y5LG",` + itoa(bcc("ZHNkIGRzZCA=")) + `,"Dev01","ap-guangzhou"` + "\r\n" + okR,
			flash: Flash{TLSMode: 1, ProductID: "CTQS08Y5LG", DeviceName: "Dev01", Region: "ap-guangzhou", ProductSecret: "ZHNkIGRzZCA="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &fakeHost{flt: tc.flt, commitErr: tc.cerr, bf: boardFile{MAC: "24:0a:c4:01:02:03", IMEI: "860000000000009"}}
			fw := newTencentAT(h)
			// Byte by byte: the firmware must not depend on how the wire chunks.
			for i := 0; i < len(tc.in); i++ {
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

func itoa(n int) string { return strconv.Itoa(n) }

// AT+TCRESTORE answers OK, wipes, and reboots (AT command set V3.2.1 §2.5):
// what arrives while it boots is lost, it prints boot noise, then "ready"
// (Espressif's AT core), with echo on again.
func TestTencentRestoreReboots(t *testing.T) {
	h := &fakeHost{bf: boardFile{MAC: "24:0a:c4:01:02:03"}}
	fw := newTencentAT(h)
	set := `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","7WmFA/MEs+Fy+32QwJWtYw=="`
	fw.receive([]byte("ATE0\r\n" + set + "\r\nAT+TCRESTORE\r\nAT+TCDEVINFOSET?\r\n"))
	before := "ATE0\r\n" + okR + okR + "+TCDEVINFOSET:OK\r\n" + okR
	got := h.sent()
	if !strings.HasPrefix(got, before) || strings.Contains(got[len(before):], "OK") || len(got) == len(before) {
		t.Fatalf("answer %q: want OK, boot noise, and nothing for the query sent while booting", got)
	}
	if tf := h.bf.Tencent; tf.Dev != nil || tf.Prd != nil || len(tf.Subs) != 0 {
		t.Fatalf("not wiped: %+v", h.bf.Tencent)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !strings.HasSuffix(h.sent(), "\r\nready\r\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no ready banner: %q", h.sent())
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := len(h.sent())
	fw.receive([]byte("AT\r\n"))
	if got := h.sent()[n:]; got != "AT\r\n"+okR {
		t.Fatalf("after boot %q: want echo on again", got)
	}
}

// AT+TCDEVREG without a cloud to reach: OK, then the SDK's
// QCLOUD_ERR_HTTP_CONN (-8, qcloud_iot_export_error.h; AT command set §8.1).
func TestTencentDevRegUnreachable(t *testing.T) {
	h := &fakeHost{}
	fw := newTencentAT(h)
	fw.receive([]byte("ATE0\r\n" + `AT+TCPRDINFOSET=1,"CTQS08Y5LG","ZHNkIGRzZCA=0123456","Dev01"` + "\r\nAT+TCDEVREG\r\n"))
	if want := "ATE0\r\n" + okR + okR + "+TCPRDINFOSET:OK\r\n" + okR + "+TCDEVREG:FAIL,-8\r\n"; h.sent() != want {
		t.Fatalf("got %q\nwant %q", h.sent(), want)
	}
}

// longSet builds a valid AT+TCDEVINFOSET at the length limits whose values
// are mostly escaped commas: 254 bytes with pidEsc = 7, one more per extra.
func longSet(pidEsc int, r string) string {
	esc := func(n int) string { return strings.Repeat(`\,`, n) }
	return `AT+TCDEVINFOSET=1,"` + esc(pidEsc) + strings.Repeat("P", 10-pidEsc) + `","` + esc(48) + `","` + esc(44) + `","` + strings.Repeat(r, 24) + `"`
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

// A reboot command is found wherever the wire splits it.
func TestRestoreIn(t *testing.T) {
	line := "AT+TCRESTORE\r\n"
	for i := 0; i <= len(line); i++ {
		if !restoreIn([]byte(line[:i]), []byte(line[i:])) && i < len("AT+TCRESTORE") {
			t.Fatalf("split at %d not found", i)
		}
	}
	if restoreIn([]byte("AT+TCDEV"), []byte("INFOSET?\r\n")) {
		t.Fatal("found in another command")
	}
}
