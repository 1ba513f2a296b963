package at

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedPort answers each command line with canned text: the doc's variants
// (a space after the colon, the URC before OK) that the simulator, following
// the real transcripts, does not produce.
type scriptedPort struct {
	mu      sync.Mutex
	answers map[string]string // command line → answer
	out     []byte
	timeout time.Duration
}

func (p *scriptedPort) Name() string { return "/dev/scripted" }
func (p *scriptedPort) Close() error { return nil }
func (p *scriptedPort) SetReadTimeout(d time.Duration) error {
	p.timeout = d
	return nil
}

func (p *scriptedPort) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, p.answers[strings.TrimSpace(string(b))]...)
	return len(b), nil
}

func (p *scriptedPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.out) == 0 {
		if p.answers == nil {
			return 0, io.EOF
		}
		time.Sleep(p.timeout) // go.bug.st/serial: a timeout is (0, nil)
		return 0, nil
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

func TestDocStyleAnswers(t *testing.T) {
	line := `AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01","ZHNkIGRzZCA="`
	p := &scriptedPort{answers: map[string]string{
		"ATE0":             "\r\nOK\r\n",
		"AT":               "\r\nOK\r\n",
		line:               "+TCDEVINFOSET: OK\r\n\r\nOK\r\n", // URC first, spaced
		"AT+TCDEVINFOSET?": "+TCDEVINFOSET: 1, \"CTQS08Y5LG\", \"Dev01\", 0, \"ap-guangzhou\"\r\n\r\nOK\r\n",
		"AT+TCMODULE":      "\r\nERROR\r\n",
		"AT+CGSN":          "+CGSN: 861234567890123\r\n\r\nOK\r\n",
	}}
	d := New(p)
	d.Timeout = 100 * time.Millisecond
	ctx := context.Background()
	if err := d.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.RunScript(ctx, []byte(line)); err != nil {
		t.Fatal(err)
	}
	info, err := d.TencentDevInfo(ctx)
	if err != nil || info.ProductID != "CTQS08Y5LG" || info.SecretBCC != 0 || info.Region != "ap-guangzhou" {
		t.Fatalf("%+v %v", info, err)
	}
	id, err := d.Identify(ctx) // a cellular module: no TCMODULE, an IMEI
	if err != nil || id.HardwareID() != "imei:861234567890123" {
		t.Fatalf("%+v %v", id, err)
	}
}

func TestEOFIsVanished(t *testing.T) {
	d := New(&scriptedPort{}) // no answers: Read returns EOF
	err := d.Hello(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vanished") {
		t.Fatalf("got %v", err)
	}
}
