package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/templates"
)

// Board is one board on one port, as the line sees it. burner/at (and later
// burner/esprom) provide it; the line does not care how bytes reach the board.
type Board interface {
	// Identify wakes the board and returns its hardware id (MAC or IMEI).
	Identify(ctx context.Context) (hwID string, err error)
	// Write burns the image.
	Write(ctx context.Context, image []byte) error
	// Verify reads the board back and compares it with the credential.
	Verify(ctx context.Context, c registry.Credential) error
	Close() error
}

// OpenBoard opens the board on a port path.
type OpenBoard func(path string) (Board, error)

// What some boards can do beyond Board; the line and verify look for it.
type (
	// preparer is a board examined once it is identified, before a
	// credential is claimed for it: an ESP32's flash size and partition
	// table decide where, and whether, its credential may be written. A
	// refusal claims nothing and writes nothing. The format returned renders
	// this board's image (sized for its partition).
	preparer interface {
		Prepare(ctx context.Context) (templates.Format, error)
	}
	// certTaker boards may lack the commands a certificate needs (the
	// Tencent AT firmware of a Wi-Fi module has none): asked, on a line of
	// certificate devices, before a credential is claimed for them, so a
	// refusal claims nothing and writes nothing.
	certTaker interface {
		TakesCerts(ctx context.Context) error
	}
	// selfTimed boards bound each command by its own deadline, scaled by
	// the bytes it moves at the line rate (the ESP ROM loader, as esptool's
	// per-megabyte timeouts do); the line adds no fixed deadline of its own,
	// which would cut a large firmware short at a slow rate.
	selfTimed interface{ SelfTimed() }
	// progresser boards report the bytes written while they write.
	progresser interface {
		OnProgress(func(done, total int))
	}
	// holder boards tell which credential they hold now, before one is
	// claimed for them.
	holder interface {
		Holds(ctx context.Context) (Held, error)
	}
)

// Held is the credential a board holds, as its read-back shows it: product
// and device name, never the secret. The zero value: nothing.
type Held struct{ Product, DeviceName string }

// ErrHeldElsewhere classifies a board that holds a credential the line must
// not overwrite: one this ledger gave another board, or one this ledger
// does not know (burned at another station), or another product's.
var ErrHeldElsewhere = errors.New("board holds a credential this line may not overwrite")

// Stage is where a board is on the line.
type Stage string

const (
	StageIdentify Stage = "identify"
	StageClaim    Stage = "claim"
	StageWrite    Stage = "write"
	StageVerify   Stage = "verify"
	StageBurned   Stage = "burned"  // done: burned and read back
	StageSkipped  Stage = "skipped" // done: the board already held its credential
	StageFailed   Stage = "failed"  // done: see Err
	StageWaiting  Stage = "waiting" // the port waits for the next board
	// StageUnplugged: the port went away (board or adapter pulled).
	StageUnplugged Stage = "unplugged"
)

// Done reports whether the stage ends a board's pass through the line.
func (s Stage) Done() bool {
	return s == StageBurned || s == StageSkipped || s == StageFailed || s == StageVerified || s == StageNotChecked
}

// Event is one step of one board; --json prints the final ones, one a line.
type Event struct {
	Time        time.Time     `json:"time"`
	Station     string        `json:"station,omitempty"`
	Port        string        `json:"port"`
	Stage       Stage         `json:"stage"`
	HWID        string        `json:"hw_id,omitempty"`
	Platform    string        `json:"platform,omitempty"`
	Product     string        `json:"product,omitempty"`
	DeviceName  string        `json:"device_name,omitempty"`
	Fingerprint string        `json:"secret_fingerprint,omitempty"`
	Attempt     int           `json:"attempt,omitempty"`
	Duration    time.Duration `json:"duration_ns,omitempty"`
	Err         string        `json:"error,omitempty"`
	// Cause is the error behind Err, for callers that classify it
	// (errors.Is); Err is its text, as the ledger records it.
	Cause error `json:"-"`
	// BytesDone of BytesTotal have been written (StageWrite, on boards
	// that report progress: ESP32 images).
	BytesDone  int64 `json:"bytes_done,omitempty"`
	BytesTotal int64 `json:"bytes_total,omitempty"`
	// MQTT is "connected" when verify logged in to the broker with the
	// board's credential.
	MQTT string `json:"mqtt,omitempty"`
	// SubDevices a verified gateway brought in, as the platform shows them
	// (verify --gateway).
	SubDevices int `json:"sub_devices,omitempty"`
}

// LineOptions configures the station loop behind `iotburn batch`.
type LineOptions struct {
	Ledger            *ledger.Ledger
	Platform, Product string
	Format            templates.Format
	Station           string
	// Ports lists the port paths present now; it is called again every Scan
	// so that boards plugged in later are found.
	Ports func() ([]string, error)
	Open  OpenBoard
	// Once burns the boards present at the start, one each, then returns.
	Once bool
	// Target stops the line after this many boards are burned (0 = no limit).
	Target int
	// Device, if set, is the one credential to burn (`iotburn burn --device`).
	Device string
	// Mode is how boards get their identity (default ModeDevice). In the
	// product-level modes every board gets ProductSecret and its own name
	// (NameFrom "mac" or "imei", after NamePrefix); Region goes with names
	// the line adds itself.
	Mode                 Mode
	ProductSecret        string
	NameFrom, NamePrefix string
	Region               string
	// Scan is how often ports are rescanned and a finished board is checked
	// for having been swapped (default 1 s).
	Scan time.Duration
	// OpTimeout bounds each board operation (default 20 s), except on boards
	// that time each of their commands by the bytes they move (ESP32).
	OpTimeout time.Duration
	// Events receives every step; called from many goroutines at once.
	Events func(Event)
	// Kits burns each gateway with its kit (registry.Kit): the sub-devices
	// the ledger pairs with it (Ledger.Pair), which the gateway registers
	// and adds to its topology on its first connect. A gateway with no kit
	// paired is refused before it is written, as is a format with no place
	// for a kit. Check CheckKits before the line starts. (On a format with
	// a place for a kit, a gateway that has one paired gets it without
	// Kits too: the board holds what the ledger says.)
	Kits bool
	// SubDevices: the boards are sub-devices (a Zigbee/BLE/Modbus node
	// behind a gateway): each gets its product and its name only, no
	// secret, since its gateway registers it and obtains its DeviceSecret.
	// The name is the next created one of the product, or with NameFrom the
	// board's own (created beforehand, as the platform requires of a
	// sub-device). Check CheckSubDevices before the line starts.
	SubDevices bool
}

// CheckSubDevices refuses a line of sub-device boards (LineOptions.SubDevices)
// that cannot work, before any board is touched: a product-level mode, a
// kit (a sub-device has none), or a format that cannot hold a credential
// without its secret.
func CheckSubDevices(mode Mode, kits bool, f templates.Format) error {
	switch {
	case mode.ProductLevel():
		return fmt.Errorf("--sub-device: %w: a sub-device board holds its product and name, its gateway registers it (--mode device), not %s", ErrModeBoard, mode)
	case kits:
		return fmt.Errorf("--sub-device with --kit: %w: the kit goes on the gateway, not on its sub-devices", ErrModeBoard)
	case f != nil && !templates.CarriesSubDevice(f):
		return fmt.Errorf("--sub-device: format %s: %w: every AT command that stores a device takes its secret; use --format nvs", f.Name(), ErrModeBoard)
	}
	return nil
}

// attachKit puts the kit the ledger pairs with c's device on c, and says
// whether there is one.
func attachKit(l *ledger.Ledger, platform, product string, c *registry.Credential) (bool, error) {
	kit, err := l.SubDevicesOf(platform, product, c.DeviceName)
	if err != nil || len(kit.SubDevices) == 0 {
		return false, err
	}
	c.Kit = &registry.Kit{SubProduct: kit.SubProduct, SubDevices: kit.SubDevices}
	return true, nil
}

// ErrNoKit: a gateway to be burned with its kit has none paired with it.
var ErrNoKit = errors.New("no sub-devices paired with the gateway")

// ErrNoKitForm: a kit given to a format with no place for one.
var ErrNoKitForm = errors.New("the format has no place for a gateway's kit")

// CheckKits refuses a line burning gateways with their kits (LineOptions.Kits)
// that cannot work, before any board is touched: a product-level mode (a
// gateway adds its sub-devices with its own device key), a format that
// cannot carry a kit, or a product none of whose gateways has a kit.
func CheckKits(l *ledger.Ledger, platform, product string, mode Mode, f templates.Format) error {
	if mode.ProductLevel() {
		return fmt.Errorf("--kit: %w: a gateway adds its sub-devices with its own device key (--mode device), not %s", ErrModeBoard, mode)
	}
	if f != nil && !templates.CarriesKit(f, platform) {
		return fmt.Errorf("--kit: format %s: %w on %s (an ESP32's NVS partition does on aliyun: --format nvs; a Tencent AT gateway is told its sub-devices by verify --gateway instead)", f.Name(), ErrNoKitForm, platform)
	}
	kits, err := l.Pairings(platform, product)
	if err != nil {
		return err
	}
	if len(kits) == 0 {
		return fmt.Errorf("--kit: %w: no gateway of %s product %s has any: pair each kit first (iotburn pair --product %s --gateway NAME --sub-product SUB --names FILE)",
			ErrNoKit, platform, product, product)
	}
	return nil
}

// LineResult counts what the line did.
type LineResult struct {
	Burned, Skipped, Failed int
	PerPort                 map[string]int // boards burned per port
	FailedPerPort           map[string]int // boards failed per port
	Elapsed                 time.Duration
	// Stop says why a line without --once ended on its own ("" after Ctrl-C).
	Stop string
	// StopErr is the error behind Stop, when the line stopped for want of
	// something (ledger.ErrNoCredentials), for the exit code.
	StopErr error
}

// ErrNoPorts is returned when --once finds nothing to burn.
var ErrNoPorts = errors.New("no ports found")

type line struct {
	o    LineOptions
	stop context.CancelFunc // stops taking new boards

	// certs: the product's devices have certificates (the ledger holds
	// their keys), so every board must be able to take one.
	certs bool

	mu       sync.Mutex
	res      LineResult
	inflight int
	running  map[string]bool
}

// RunLine runs the line until ctx is cancelled (Ctrl-C: boards in flight are
// finished first), the target is reached, the ledger runs out of credentials,
// or, with Once, every board present at the start has been handled.
func RunLine(ctx context.Context, o LineOptions) (LineResult, error) {
	if o.Scan <= 0 {
		o.Scan = time.Second
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 20 * time.Second
	}
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	// Also checked by the commands before the line starts; here for
	// every other caller, before any board is touched.
	certs := false
	if o.Ledger != nil && o.Format != nil {
		if err := CheckCertFormat(o.Ledger, o.Platform, o.Product, o.Format); err != nil {
			return LineResult{}, err
		}
		var err error
		if certs, err = o.Ledger.HasCertificates(o.Platform, o.Product); err != nil {
			return LineResult{}, err
		}
	}
	if o.Kits {
		if err := CheckKits(o.Ledger, o.Platform, o.Product, o.Mode, o.Format); err != nil {
			return LineResult{}, err
		}
	}
	if o.SubDevices {
		if err := CheckSubDevices(o.Mode, o.Kits, o.Format); err != nil {
			return LineResult{}, err
		}
	}
	start := time.Now()
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	l := &line{o: o, stop: stop, running: map[string]bool{}, certs: certs}
	l.res.PerPort, l.res.FailedPerPort = map[string]int{}, map[string]int{}

	var wg sync.WaitGroup
	for first := true; ; first = false {
		paths, err := o.Ports()
		if err != nil {
			stop()
			wg.Wait()
			return l.result(start), err
		}
		if first && o.Once && len(paths) == 0 {
			return l.result(start), fmt.Errorf("%w: check --ports and that the boards are plugged in (`iotburn ports` lists them)", ErrNoPorts)
		}
		sort.Strings(paths)
		for _, p := range paths {
			l.mu.Lock()
			busy := l.running[p]
			l.running[p] = true
			l.mu.Unlock()
			if busy {
				continue
			}
			wg.Add(1)
			go func(p string) {
				defer wg.Done()
				l.work(stopCtx, p)
				l.mu.Lock()
				delete(l.running, p)
				l.mu.Unlock()
			}(p)
		}
		if o.Once {
			break
		}
		select {
		case <-stopCtx.Done():
		case <-time.After(o.Scan):
			continue
		}
		break
	}
	wg.Wait()
	return l.result(start), nil
}

func (l *line) result(start time.Time) LineResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.res
	r.PerPort, r.FailedPerPort = maps.Clone(l.res.PerPort), maps.Clone(l.res.FailedPerPort)
	r.Elapsed = time.Since(start)
	return r
}

func (l *line) emit(e Event) {
	e.Time = time.Now()
	e.Station = l.o.Station
	if e.Stage != StageWaiting && e.Platform == "" && e.HWID != "" {
		e.Platform, e.Product = l.o.Platform, l.o.Product
	}
	l.o.Events(e)
}

// work serves one port until the line stops or the port disappears.
// A finished board is re-identified every Scan; the next board is one with
// another hardware id, or any board after the port vanished and came back
// (that is how a technician retries a failed board: unplug, replug).
// A board that cannot be opened or identified is reported once, not at every
// scan, and reported again only when the problem changes.
func (l *line) work(stop context.Context, path string) {
	lastHW, lastErr := "", ""
	for stop.Err() == nil {
		if _, err := os.Stat(path); err != nil {
			l.emit(Event{Port: path, Stage: StageUnplugged})
			return // the scan starts a fresh worker when it is back
		}
		next, handled, err := l.pass(stop, path, lastHW)
		switch {
		case err != nil:
			if err.Error() != lastErr {
				lastErr = err.Error()
				l.mu.Lock()
				l.res.Failed++
				l.res.FailedPerPort[path]++
				l.mu.Unlock()
				ev := Event{Port: path, Stage: StageFailed, Err: lastErr, Cause: err}
				// A board that never told its id has no unit: only the
				// history can show it was there. Recorded once per reported
				// failure, as counted above, not at every rescan. A port
				// that cannot be opened is not a board, so it is not recorded.
				var idErr identifyError
				if errors.As(err, &idErr) {
					l.refused(&ev, "")
				}
				l.emit(ev)
			}
			if l.o.Once {
				return
			}
		case next != "":
			lastHW, lastErr = next, ""
		default:
			lastHW = next
		}
		if l.o.Once && handled {
			return
		}
		select {
		case <-stop.Done():
		case <-time.After(l.o.Scan):
		}
	}
}

// pass opens the port, identifies the board and, if it is a new one, runs it
// through the line. It returns the hardware id of the board the port is done
// with ("" when whatever answers next is to be treated as a new board),
// whether a board was handled in this pass, and why no board could be
// identified.
func (l *line) pass(stop context.Context, path, lastHW string) (string, bool, error) {
	// Work on a board, once started, is not cut short by Ctrl-C: a half-written
	// board is worse than a few more seconds. Each operation has its own timeout.
	work := context.WithoutCancel(stop)
	b, err := l.o.Open(path)
	if err != nil {
		return "", false, err
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(work, l.o.OpTimeout)
	if lastHW == "" {
		l.emit(Event{Port: path, Stage: StageIdentify})
	}
	hw, err := b.Identify(ctx)
	cancel()
	if err != nil {
		if lastHW != "" && !l.o.Once {
			// The board that was done stopped answering: treat it as gone,
			// so whatever answers next is a new board.
			return "", false, nil
		}
		return "", false, identifyError{fmt.Errorf("identify: %w", err)}
	}
	if hw == lastHW {
		return hw, false, nil // the same board is still on the port
	}
	if !l.reserve() {
		return lastHW, false, nil // its turn comes if a board in flight fails
	}
	if gone := l.board(work, b, path, hw); gone {
		// The port vanished under the burn and may be back before the next
		// scan sees it missing (a short pull, a quick replug): the board that
		// answers then is served again, not taken for one already done.
		return "", true, nil
	}
	return hw, true, nil
}

// vanished reports a failure caused by the port going away (USB pulled).
func vanished(err error) bool {
	return errors.Is(err, at.ErrVanished) || errors.Is(err, esprom.ErrVanished)
}

// identifyError marks a pass that failed because the board on the port could
// not be identified (as opposed to a port that could not be opened).
type identifyError struct{ error }

func (e identifyError) Unwrap() error { return e.error }

// refused records in the ledger a board turned away before it had a
// credential. ev.Err is the reason; it is the line's own text (identify and
// claim errors name boards, devices and what to do, never a secret). A ledger
// that cannot record it is said in the event, as for Fail.
func (l *line) refused(ev *Event, hw string) {
	if l.o.Ledger == nil {
		return
	}
	if err := l.o.Ledger.Refused(hw, l.o.Station, ev.Port, l.o.Platform, l.o.Product, ev.Err); err != nil {
		ev.Err += "; and the ledger could not record it: " + err.Error()
	}
}

// refuse fails a board that has no unit of its own (nothing claimed, or
// nothing of its claim kept): the refusal recorded, the event sent.
func (l *line) refuse(ev *Event, hw string, err error) {
	ev.Stage, ev.Err, ev.Cause = StageFailed, err.Error(), err
	l.refused(ev, hw)
	l.emit(*ev)
}

// reserve takes a slot toward the target; false means stop taking boards.
func (l *line) reserve() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.o.Target > 0 && l.res.Burned+l.inflight >= l.o.Target {
		return false
	}
	l.inflight++
	return true
}

// board runs one identified board through claim, render, write and verify,
// each step a ledger transition, and records the outcome. It reports whether
// the board's port vanished under the work.
func (l *line) board(ctx context.Context, b Board, path, hw string) (gone bool) {
	ev := Event{Port: path, HWID: hw}
	outcome := StageFailed
	defer func() {
		gone = ev.Cause != nil && vanished(ev.Cause)
		l.mu.Lock()
		l.inflight--
		switch outcome {
		case StageBurned:
			l.res.Burned++
			l.res.PerPort[path]++
			if l.o.Target > 0 && l.res.Burned >= l.o.Target {
				l.res.Stop = fmt.Sprintf("target of %d boards reached", l.o.Target)
				l.stop()
			}
		case StageSkipped:
			l.res.Skipped++
		case "":
		default:
			l.res.Failed++
			l.res.FailedPerPort[path]++
		}
		l.mu.Unlock()
	}()
	step := func(s Stage) { ev.Stage = s; l.emit(ev) }
	fail := func(unitID int64, err error) {
		ev.Stage, ev.Err, ev.Cause = StageFailed, err.Error(), err
		if unitID != 0 {
			if lerr := l.o.Ledger.Fail(unitID, ev.Err); lerr != nil {
				ev.Err += "; and the ledger could not record it: " + lerr.Error()
			}
		}
		l.emit(ev)
	}
	op := func(f func(context.Context) error) error {
		if _, ok := b.(selfTimed); ok {
			return f(ctx)
		}
		c, cancel := context.WithTimeout(ctx, l.o.OpTimeout)
		defer cancel()
		return f(c)
	}

	format := l.o.Format
	if p, ok := b.(preparer); ok {
		var f templates.Format
		err := op(func(c context.Context) (err error) { f, err = p.Prepare(c); return err })
		if err != nil {
			l.refuse(&ev, hw, err)
			return
		}
		format = f
	}
	if l.o.SubDevices && !templates.CarriesSubDevice(format) {
		err := fmt.Errorf("the board's format %s cannot hold a sub-device without its secret: %w", format.Name(), ErrModeBoard)
		l.refuse(&ev, hw, err)
		return
	}
	if l.o.Kits && !templates.CarriesKit(format, l.o.Platform) {
		err := fmt.Errorf("the board's format %s: %w", format.Name(), ErrNoKitForm)
		l.refuse(&ev, hw, err)
		return
	}

	if ct, ok := b.(certTaker); ok && l.certs {
		if err := op(ct.TakesCerts); err != nil {
			l.refuse(&ev, hw, fmt.Errorf("%s product %s has certificate devices: %w: %w", l.o.Platform, l.o.Product, ErrModeBoard, err))
			return
		}
	}

	// Before claiming: what does the board hold already? A board this ledger
	// knows under another id is that unit (never a second credential); one
	// holding a credential this line did not give it is refused as it is.
	if h, ok := b.(holder); ok && !l.o.Mode.ProductLevel() {
		var held Held
		err := op(func(c context.Context) (err error) { held, err = h.Holds(c); return err })
		if err == nil && held.DeviceName != "" {
			hw, err = l.heldBy(hw, held)
		}
		if err != nil {
			l.refuse(&ev, hw, err)
			return
		}
		ev.HWID = hw
	}

	step(StageClaim)
	var unit ledger.Unit
	var err error
	switch {
	case l.o.Mode.ProductLevel(), l.o.SubDevices && l.o.NameFrom != "":
		unit, err = l.claimOwnName(b, hw, path)
	case l.o.Device != "":
		unit, err = l.o.Ledger.ClaimName(l.o.Platform, l.o.Product, l.o.Device, hw, l.o.Station, path)
	default:
		unit, err = l.o.Ledger.Claim(l.o.Platform, l.o.Product, hw, l.o.Station, path)
	}
	if err != nil {
		if errors.Is(err, ledger.ErrNoCredentials) {
			l.mu.Lock()
			l.res.Stop, l.res.StopErr = err.Error(), err
			l.mu.Unlock()
			l.stop()
			// Not the board's failure: the line ran out. It is counted as
			// the line's stop, not as a failed board.
			outcome = ""
		}
		// No unit, so Fail has nothing to mark: record the refusal instead.
		l.refuse(&ev, hw, err)
		return
	}
	cred := unit.Cred
	ev.DeviceName, ev.Fingerprint = cred.DeviceName, cred.SecretFingerprint()
	if l.o.Mode.ProductLevel() {
		// The image is the product's: its secret and the board's own name.
		// The device secret is the board's to fetch, not ours to burn.
		cred.DeviceSecret, cred.ProductSecret = "", l.o.ProductSecret
		ev.Fingerprint = registry.Fingerprint(l.o.ProductSecret)
	}
	ev.Attempt = unit.Attempts
	if l.o.SubDevices {
		// Its product and name only: its gateway registers it.
		cred.DeviceSecret, cred.SubDevice = "", true
		ev.Fingerprint = ""
	}
	if l.o.Kits || (!l.o.SubDevices && templates.CarriesKit(format, l.o.Platform)) {
		// A gateway's kit is part of what its board holds, rendered with it
		// and read back against it, burned before or not, wherever the
		// format has a place for it: what the ledger pairs is what the
		// board gets, --kit or not (a line without it must not take a
		// gateway burned with its kit for one burned wrong). --kit also
		// refuses a gateway with none.
		has, err := attachKit(l.o.Ledger, l.o.Platform, l.o.Product, &cred)
		if err == nil && !has && l.o.Kits {
			err = fmt.Errorf("gateway %s: %w: pair its kit first (iotburn pair --product %s --gateway %s --sub-product SUB --names FILE)", cred.DeviceName, ErrNoKit, l.o.Product, cred.DeviceName)
		}
		if err != nil {
			l.giveBack(&ev, unit, hw, err)
			return
		}
	}

	switch unit.State {
	case ledger.Void:
		fail(0, fmt.Errorf("board %s had credential %s, which was voided: this board is scrapped, take it off the line", hw, cred.DeviceName))
		return
	case ledger.Burned, ledger.Verified:
		// Burned before (this shift or another): if it still holds its
		// credential there is nothing to do; if it holds something else, burn
		// the same one again. A board that did not answer (pulled while it
		// was read) tells nothing: it stays burned, and is read again when
		// it is back.
		err := op(func(c context.Context) error { return b.Verify(c, cred) })
		switch {
		case err == nil:
			outcome = StageSkipped
			ev.Err = ""
			step(StageSkipped)
			return
		case !boardsFault(err):
			outcome = ""
			ev.Stage, ev.Err, ev.Cause = StageFailed, fmt.Sprintf("reading what the board holds: %v (it stays burned; plug it in again)", err), err
			l.emit(ev)
			return
		}
	}

	// Until Begin, nothing of the credential has reached the board: a failure
	// here gives a fresh claim back, so no credential is spent on a board
	// that was never written.
	unwritten := func(err error) { l.giveBack(&ev, unit, hw, err) }
	// A certificate that cannot log in (expired, or a key that is not
	// its own) is refused before the board is written: burning it would
	// make a board that fails in the field.
	if cred.IsCert() {
		if _, err := devauth.CheckCert(cred.DeviceCert, cred.DevicePrivateKey, time.Now()); err != nil {
			unwritten(fmt.Errorf("device %s: %w", cred.DeviceName, err))
			return
		}
	}
	image, err := format.Render(cred)
	if err != nil {
		unwritten(fmt.Errorf("render %s: %w", format.Name(), err))
		return
	}
	if err := l.o.Ledger.Begin(unit.ID); err != nil {
		unwritten(err)
		return
	}
	ev.Attempt = unit.Attempts + 1
	start := time.Now()
	step(StageWrite)
	if pb, ok := b.(progresser); ok {
		pb.OnProgress(l.progress(ev))
	}
	if err := op(func(c context.Context) error { return b.Write(c, image) }); err != nil {
		fail(unit.ID, fmt.Errorf("write: %w", err))
		return
	}
	step(StageVerify)
	if err := op(func(c context.Context) error { return b.Verify(c, cred) }); err != nil {
		fail(unit.ID, fmt.Errorf("verify: %w", err))
		return
	}
	ev.Duration = time.Since(start)
	if err := l.o.Ledger.Burned(unit.ID, ev.Duration); err != nil {
		fail(0, err)
		return
	}
	outcome = StageBurned
	step(StageBurned)
	return false
}

// giveBack fails a board before anything of its credential reached it: a
// fresh claim is given back (no credential spent on a board never written);
// a unit written before keeps its claim and records the failure.
func (l *line) giveBack(ev *Event, unit ledger.Unit, hw string, err error) {
	if unit.Attempts == 0 && unit.State == ledger.Reserved {
		if rerr := l.o.Ledger.Release(unit.HWID); rerr == nil {
			ev.DeviceName, ev.Fingerprint = "", ""
			ev.Stage, ev.Err, ev.Cause = StageFailed, err.Error()+" (its credential was given back: nothing reached the board)", err
			l.refused(ev, hw)
			l.emit(*ev)
			return
		}
	}
	ev.Stage, ev.Err, ev.Cause = StageFailed, err.Error(), err
	if lerr := l.o.Ledger.Fail(unit.ID, ev.Err); lerr != nil {
		ev.Err += "; and the ledger could not record it: " + lerr.Error()
	}
	l.emit(*ev)
}

// heldBy decides what a board holding held is, and returns the hardware id
// the line must know it by: its own, or the one the ledger already bound
// the credential to (the same board, identified another way before).
func (l *line) heldBy(hw string, held Held) (string, error) {
	if held.Product != l.o.Product {
		return hw, fmt.Errorf("board %s holds device %s of product %s, not %s: it was burned for another product; take it to that product's line (or wipe it there): %w",
			hw, held.DeviceName, held.Product, l.o.Product, ErrHeldElsewhere)
	}
	u, ok, err := l.o.Ledger.UnitByDevice(l.o.Platform, l.o.Product, held.DeviceName)
	if err != nil {
		return hw, err
	}
	if ok {
		if u.HWID != hw {
			if other, taken, err := l.o.Ledger.UnitByHW(hw); err == nil && taken && other.ID != u.ID {
				// Two units for one board's flash: a clone, or a board moved
				// between units by hand. Nothing may be decided for it.
				return hw, fmt.Errorf("board %s holds device %s, which the ledger gave board %s, and itself has %s: check both boards and `iotburn ledger status`: %w",
					hw, held.DeviceName, u.HWID, other.Cred.DeviceName, ErrHeldElsewhere)
			}
		}
		return u.HWID, nil // this ledger's credential: resume with it
	}
	if _, err := l.o.Ledger.Credential(l.o.Platform, l.o.Product, held.DeviceName); err == nil {
		// In the ledger, on no board: an exported image flashed outside the line.
		return hw, fmt.Errorf("board %s holds device %s, which this ledger handed out for outside flashing (exported), not to a board on the line: leave it as it is, or void the device first: %w",
			hw, held.DeviceName, ErrHeldElsewhere)
	}
	return hw, fmt.Errorf("board %s holds device %s of product %s, which this ledger does not know (burned at another station, with another ledger?): take it back to that station; its ledger says which board holds it: %w",
		hw, held.DeviceName, held.Product, ErrHeldElsewhere)
}

// progressEvery is how often a board's write progress is reported: often
// enough for a bar to move, rarely enough not to flood --json or the screen.
const progressEvery = 250 * time.Millisecond

// progress reports a board's bytes written as StageWrite events, at most
// every progressEvery and at the end.
func (l *line) progress(ev Event) func(done, total int) {
	var last time.Time
	return func(done, total int) {
		if now := time.Now(); done < total && now.Sub(last) < progressEvery {
			return
		} else {
			last = now
		}
		e := ev
		e.Stage, e.BytesDone, e.BytesTotal = StageWrite, int64(done), int64(total)
		l.emit(e)
	}
}

// boardIDs is what a board tells of itself beyond its hardware id.
type boardIDs interface {
	MAC() string
	IMEI() string
}

// claimOwnName claims the credential named after the board (product-level
// modes): a pre-registered name must be in the ledger already (created by
// `iotburn create`); in the modes where the platform creates the device on
// registration the line adds the name itself.
func (l *line) claimOwnName(b Board, hw, path string) (ledger.Unit, error) {
	var mac, imei string
	if ids, ok := b.(boardIDs); ok {
		mac, imei = ids.MAC(), ids.IMEI()
	}
	name, err := BoardName(l.o.NameFrom, l.o.NamePrefix, mac, imei)
	if err != nil {
		return ledger.Unit{}, fmt.Errorf("board %s: %w", hw, err)
	}
	if l.o.Mode.NamesOnTheFly() {
		if err := l.o.Ledger.AddName(l.o.Platform, l.o.Product, l.o.Region, name); err != nil {
			return ledger.Unit{}, err
		}
	}
	u, err := l.o.Ledger.ClaimName(l.o.Platform, l.o.Product, name, hw, l.o.Station, path)
	if errors.Is(err, ledger.ErrNotFound) {
		return u, fmt.Errorf("board %s is named %s, which is not pre-registered in %s product %s: add it with `iotburn create --names`, or check --name-from/--name-prefix", hw, name, l.o.Platform, l.o.Product)
	}
	return u, err
}
