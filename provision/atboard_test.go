package provision

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
)

// A scanner's lines, CR, LF or CRLF ended: MACs in any spelling, an IMEI, a
// serial; a mis-scan is an error and the next label is read; a scanner that
// is gone says so; one that types nothing ends with the context.
func TestLabelScanner(t *testing.T) {
	s := NewLabelScanner(strings.NewReader("240AC4010203\r\n\n24-0a-c4-01-02-04\rnot a label!\n490154203237518\nSN-000123"))
	ctx := context.Background()
	for _, want := range []string{"24:0a:c4:01:02:03", "24:0a:c4:01:02:04", "", "imei:490154203237518", "sn:SN-000123"} {
		id, err := s.Next(ctx)
		if got := id.HardwareID(); got != want || (err != nil) != (want == "") {
			t.Fatalf("label %q, %v; want %q", got, err, want)
		}
	}
	if _, err := s.Next(ctx); !errors.Is(err, ErrNoLabel) {
		t.Fatalf("after the last label: %v", err)
	}
	pr, _ := io.Pipe()
	idle := NewLabelScanner(pr)
	c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := idle.Next(c); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "scan the board's label") {
		t.Fatalf("nothing scanned: %v", err)
	}
}

// On an Aliyun IDMAU board the line's identity is the scanned label: without
// a scanner, Identify fails with the firmware's reason; with one, the
// board's id is the label's, and the label wins on a Tencent board too.
func TestATBoardIdentityFromLabel(t *testing.T) {
	for _, kind := range []string{"aliyun-at", "tencent-at"} {
		f, err := sim.Start(sim.Options{Dir: t.TempDir(), Kind: kind, Count: 1, Baud: sim.Unpaced})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		path := f.Boards()[0].Path()
		platform := strings.TrimSuffix(kind, "-at")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()

		b, err := OpenATBoard(platform, 0)(path)
		if err != nil {
			t.Fatal(err)
		}
		hw, err := b.Identify(ctx)
		b.Close()
		if kind == "aliyun-at" && (err == nil || !strings.Contains(err.Error(), "label")) {
			t.Fatalf("%s without a scanner: %q, %v", kind, hw, err)
		}
		if kind == "tencent-at" && (err != nil || hw != f.Boards()[0].MAC()) {
			t.Fatalf("%s without a scanner: %q, %v", kind, hw, err)
		}

		labels := NewLabelScanner(strings.NewReader("AA:BB:CC:00:11:22\n"))
		b, err = OpenATBoardWith(platform, 0, ATBoardOptions{Labels: func(p string) *LabelScanner {
			if p == path {
				return labels
			}
			return nil
		}})(path)
		if err != nil {
			t.Fatal(err)
		}
		hw, err = b.Identify(ctx)
		if err != nil || hw != "aa:bb:cc:00:11:22" || b.(boardIDs).MAC() != "aa:bb:cc:00:11:22" {
			t.Fatalf("%s with a scanner: %q, %v", kind, hw, err)
		}
		b.Close()
	}
}
