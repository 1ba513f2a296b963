package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Unpaced, as Options.Baud, moves bytes as fast as the pty can: for logic
// tests where line timing is not the point.
const Unpaced = -1

// Options configure a farm of simulated boards.
type Options struct {
	Dir   string // holds the links, the board files and a lock; created 0700
	Kind  string // "tencent-at" (default); see Kinds
	Count int    // boards to run; 0 = as many as Dir holds, at least 1
	Baud  int    // 0 = 115200; Unpaced for no pacing
	Log   *slog.Logger
	// Cloud is the base URL the boards' dynamic registration goes to (the
	// emulator's, e.g. "http://127.0.0.1:8443"): Tencent's AT+TCDEVREG and
	// Aliyun's AT+IDMREG pre-registration. "" = no network: they fail.
	Cloud string
	// Chaos is a bad day to rehearse on every board (drop, garble, stall,
	// unplug, reboot, glitch); the zero value is a good day.
	Chaos Chaos
	// MQTT is the broker address ("host:port", plain TCP) of Aliyun's
	// MQTT-based registration-free flow (AT+IDMREG=1) and of the Tencent
	// module's AT+TCMQTTCONN (a gateway's uplink, tencent_gateway.go). "" = none.
	MQTT string
}

// Farm is a running set of simulated boards.
type Farm struct {
	dir    string
	boards []*Board
	lock   *os.File
}

// Start brings up the farm. Boards that Dir already holds come back with
// their identity and flash; missing ones are created with a fresh, unique MAC
// and IMEI and written to Dir before they appear.
func Start(opts Options) (*Farm, error) {
	if opts.Dir == "" {
		return nil, errors.New("sim: no directory given (--dir)")
	}
	if opts.Kind == "" {
		opts.Kind = "tencent-at"
	}
	if err := checkKind(opts.Kind); err != nil {
		return nil, err
	}
	if opts.Baud == 0 {
		opts.Baud = 115200
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	lock, err := lockDir(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("sim: %s is in use by another simulator (%v): stop it or pick another --dir", opts.Dir, err)
	}
	f := &Farm{dir: opts.Dir, lock: lock}
	if err := f.start(opts); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Farm) start(opts Options) error {
	stored, err := storedIndexes(opts.Dir)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	count := opts.Count
	if count <= 0 {
		count = max(1, len(stored))
	}
	files := make([]boardFile, count)
	macs, imeis := map[string]bool{}, map[string]bool{}
	var fresh []int
	for i := range count {
		bf, err := readBoardFile(boardFileName(opts.Dir, i))
		switch {
		case errors.Is(err, os.ErrNotExist):
			fresh = append(fresh, i)
			continue
		case err != nil:
			return fmt.Errorf("sim: %w", err)
		case bf.Kind != opts.Kind:
			return fmt.Errorf("sim: %s holds a %s board, not %s: use another --dir", opts.Dir, bf.Kind, opts.Kind)
		}
		files[i] = bf
		macs[bf.MAC], imeis[bf.IMEI] = true, true
	}
	for _, i := range fresh {
		bf := boardFile{Version: fileVersion, Index: i, Kind: opts.Kind}
		for bf.MAC == "" || macs[bf.MAC] {
			bf.MAC = newMAC()
		}
		for bf.IMEI == "" || imeis[bf.IMEI] {
			bf.IMEI = newIMEI()
		}
		macs[bf.MAC], imeis[bf.IMEI] = true, true
		if err := writeBoardFile(boardFileName(opts.Dir, i), bf); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		files[i] = bf
	}
	for i, bf := range files {
		b := &Board{
			index: i, path: linkName(opts.Dir, i), filePath: boardFileName(opts.Dir, i),
			baud: opts.Baud, kind: opts.Kind, log: opts.Log, bf: bf,
			cloudURL: opts.Cloud, mqttAddr: opts.MQTT,
			chaos: opts.Chaos, rng: chaosRand(opts.Chaos.Seed, i),
		}
		// The label printed on the board: its MAC, as a scanner would type
		// it (an Aliyun IDMAU board tells its id no other way).
		if err := os.WriteFile(b.path+".label", []byte(b.MAC()+"\n"), 0o600); err != nil {
			return fmt.Errorf("sim: board %s: label: %w", b.path, err)
		}
		b.plugMu.Lock()
		err := b.plugLocked()
		b.plugMu.Unlock()
		if err != nil {
			return err
		}
		f.boards = append(f.boards, b)
	}
	return nil
}

// Boards returns the farm's boards in port order.
func (f *Farm) Boards() []*Board { return append([]*Board(nil), f.boards...) }

// Dir is the farm's directory.
func (f *Farm) Dir() string { return f.dir }

// Close unplugs every board (their links go; their files stay) and releases Dir.
func (f *Farm) Close() error {
	var errs []error
	for _, b := range f.boards {
		b.closed.Store(true)
		errs = append(errs, b.Unplug())
	}
	f.boards = nil
	if f.lock != nil {
		errs = append(errs, f.lock.Close())
		f.lock = nil
	}
	return errors.Join(errs...)
}
