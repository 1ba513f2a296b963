package provision

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/registry"
)

// OpenATBoard opens AT-command boards at baud, speaking the platform's
// firmware dialect ("tencent": the Tencent IoT AT firmware, "aliyun":
// Alibaba's IDMAU AT firmware), each board's id read from the board.
func OpenATBoard(platform string, baud int) OpenBoard {
	return OpenATBoardWith(platform, baud, ATBoardOptions{})
}

// ATBoardOptions are what an AT line may need beyond the port.
type ATBoardOptions struct {
	// Labels, if set, gives each port its label scanner: the board's id
	// (MAC, IMEI or serial) is then the one scanned from its label, one line
	// per board, instead of what the board says. Alibaba's IDMAU firmware
	// tells no id at all, so an Aliyun AT line needs it. nil for a port =
	// no scanner there.
	Labels func(port string) *LabelScanner
	// RegisterURL is where the station registers an Aliyun board's name
	// for it (product-preregistered mode: the IDMAU firmware cannot,
	// atboard_register.go): the HTTPS dynamic-registration endpoint's base,
	// "" = the public one of the product's region,
	// https://iot-auth.<region>.aliyuncs.com (reference/aliyun.md §3a).
	RegisterURL string
	// ConnectWait bounds the wait for an Aliyun module's cloud login
	// (AT+IDMSTA? 2) after AT+IDMCON (0 = at.ConnectTimeout).
	ConnectWait time.Duration
	// Log, if set, gets every line to and from each module, secrets masked:
	// the wire log of -v.
	Log *slog.Logger
}

// OpenATBoardWith is OpenATBoard with options.
func OpenATBoardWith(platform string, baud int, o ATBoardOptions) OpenBoard {
	dialect, derr := at.ParseDialect(platform)
	return func(path string) (Board, error) {
		if derr != nil {
			return nil, derr
		}
		p, err := burner.Open(path, baud)
		if err != nil {
			return nil, err
		}
		d := at.NewDialect(p, dialect)
		// A board that answers garbage or nothing will not do better on a
		// third try; two keep a wrong --baud from stalling a port for long.
		d.Attempts = 2
		d.ConnectWait = o.ConnectWait
		if o.Log != nil {
			d.SetLog(o.Log)
		}
		b := &atBoard{port: p, drv: d, opts: o}
		if o.Labels != nil {
			b.labels = o.Labels(path)
		}
		return b, nil
	}
}

type atBoard struct {
	port   burner.Port
	drv    *at.Driver
	opts   ATBoardOptions
	labels *LabelScanner
	id     at.Identity // from the last Identify
}

// MAC and IMEI are the board's own ids, for product-level names.
func (b *atBoard) MAC() string  { return b.id.MAC }
func (b *atBoard) IMEI() string { return b.id.IMEI }

func (b *atBoard) Identify(ctx context.Context) (string, error) {
	if err := b.drv.Hello(ctx); err != nil {
		return "", err
	}
	id, err := b.drv.Identify(ctx)
	if b.labels != nil && (err == nil || errors.Is(err, at.ErrNoHardwareID)) {
		// The label is the id; the board's own words only fill in the rest.
		lid, lerr := b.labels.Next(ctx)
		if lerr != nil {
			return "", fmt.Errorf("board on %s: %w", b.port.Name(), lerr)
		}
		id.MAC, id.IMEI, id.Serial = lid.MAC, lid.IMEI, lid.Serial
		err = nil
	}
	if err != nil {
		return "", err
	}
	b.id = id
	return id.HardwareID(), nil
}

func (b *atBoard) Write(ctx context.Context, image []byte) error {
	return b.drv.RunScript(ctx, image)
}

func (b *atBoard) Verify(ctx context.Context, c registry.Credential) error {
	return b.drv.Verify(ctx, c)
}

// Holds reads the credential the module holds now (AT+TCDEVINFOSET? /
// AT+IDMAU?): its product and device name, never the secret. An empty
// module holds nothing.
func (b *atBoard) Holds(ctx context.Context) (Held, error) {
	if b.drv.Dialect == at.Aliyun {
		info, err := b.drv.AliyunDevInfo(ctx)
		return Held{Product: info.ProductKey, DeviceName: info.DeviceName}, err
	}
	info, err := b.drv.TencentDevInfo(ctx)
	return Held{Product: info.ProductID, DeviceName: info.DeviceName}, err
}

// TakesCerts reports whether the module's firmware has the certificate
// commands (at.Driver.TakesCerts): the line asks it before it claims a
// certificate device for the board.
func (b *atBoard) TakesCerts(ctx context.Context) error { return b.drv.TakesCerts(ctx) }

func (b *atBoard) Close() error { return b.port.Close() }

// LabelScanner is a barcode scanner at one port of the line: it types each
// board's label (its MAC, IMEI or serial number) as one line, as USB
// scanners in keyboard or serial mode do. Next waits for the next line.
// Safe for one reader at a time, which is what one port is.
type LabelScanner struct {
	lines chan string
	errc  chan error
	once  sync.Once
	r     io.Reader
}

// NewLabelScanner reads label lines from r (CR, LF or CRLF ended).
func NewLabelScanner(r io.Reader) *LabelScanner {
	return &LabelScanner{lines: make(chan string), errc: make(chan error, 1), r: r}
}

// start reads r on its own goroutine from the first Next on: a scanner is a
// device that types when it types, not when asked.
func (s *LabelScanner) start() {
	go func() {
		sc := bufio.NewScanner(s.r)
		sc.Split(scanLabelLines)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				s.lines <- l
			}
		}
		err := sc.Err()
		if err == nil {
			err = io.EOF
		}
		s.errc <- err
	}()
}

// ErrNoLabel is returned when the scanner is gone (its reader ended).
var ErrNoLabel = errors.New("the label scanner has no more labels")

// Next waits for the next label (until ctx ends) and reads it as a MAC, an
// IMEI or a serial number (at.ParseLabel). A line that is none of these is
// an error saying to scan again; the next call waits for the next line.
func (s *LabelScanner) Next(ctx context.Context) (at.Identity, error) {
	s.once.Do(s.start)
	select {
	case l := <-s.lines:
		return at.ParseLabel(l)
	case err := <-s.errc:
		s.errc <- err // every later call sees it too
		return at.Identity{}, fmt.Errorf("%w (%v): reconnect it", ErrNoLabel, err)
	case <-ctx.Done():
		return at.Identity{}, fmt.Errorf("no label scanned: scan the board's label (its MAC, IMEI or serial) with the port's scanner: %w", ctx.Err())
	}
}

// scanLabelLines splits at CR, LF or CRLF (scanners end a label with either).
func scanLabelLines(data []byte, atEOF bool) (int, []byte, error) {
	for i, c := range data {
		if c == '\r' || c == '\n' {
			return i + 1, data[:i], nil
		}
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
