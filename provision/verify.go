package provision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates/nvs"
)

// StageVerified ends a board's QA pass: it holds its credential, the platform
// knows the device and (if asked) the board's credential logs in.
// StageNotChecked ends one that could not be judged: the platform or the
// broker could not be reached, the board did not answer. Nothing is said
// about the board: its ledger state stays as it was.
const (
	StageVerified   Stage = "verified"
	StageNotChecked Stage = "not-checked"
)

// boardsFault reports an error that is evidence against the board or its
// credential: it holds something else, the platform has no such device or
// has it disabled, the broker refuses the credential. Only these fail a
// board in QA; anything else (a timeout, a 5xx, no route, a silent board)
// leaves it unjudged.
func boardsFault(err error) bool {
	return errors.Is(err, at.ErrMismatch) || errors.Is(err, esprom.ErrMismatch) || errors.Is(err, nvs.ErrMismatch) ||
		errors.Is(err, registry.ErrNotFound) || errors.Is(err, errDisabled) || errors.Is(err, ErrLoginRefused) ||
		errors.Is(err, errNotHolding) || errors.Is(err, registry.ErrRefused) || errors.Is(err, at.ErrRefused) ||
		errors.Is(err, errAppFailed) || errors.Is(err, errGatewayMismatch)
}

var (
	errDisabled   = errors.New("device disabled on the platform")
	errNotHolding = errors.New("board does not hold the credential")
)

// VerifyOptions configures QA's `iotburn verify`.
type VerifyOptions struct {
	Ledger            *ledger.Ledger
	Platform, Product string
	// Ports to read boards from; nil checks every burned unit of the product
	// against the platform only (the whole batch, no boards needed).
	Ports func() ([]string, error)
	Open  OpenBoard
	// Cloud, if set, is asked whether each device exists and is enabled.
	Cloud registry.Platform
	// Login, if set, connects to the platform's MQTT broker with the board's
	// credential and returns the broker's reason when it refuses.
	Login func(ctx context.Context, c registry.Credential) error
	// TokenLogin is Login for registration-free boards (ClientID + DeviceToken).
	TokenLogin func(ctx context.Context, c registry.Credential, clientID, token string) error
	// Mode and ProductSecret: in the product-level modes a board holds the
	// product's credential; Register has it register itself with the
	// platform (as it will in the field) before the platform and MQTT checks.
	Mode          Mode
	ProductSecret string
	Register      bool
	// Gateway: the boards are gateways; each brings in the sub-devices the
	// ledger pairs with it (ledger.Pair) and the platform's topology must
	// hold exactly those (checkGateway). Needs Ports.
	Gateway bool
	// SubDevices: the boards are sub-devices burned with their product and
	// name only (LineOptions.SubDevices): the board is checked for those,
	// the platform for the device; no MQTT login (a sub-device logs in
	// through its gateway: verify its gateway with Gateway).
	SubDevices bool
	OpTimeout  time.Duration
	// Events gets each board's outcome, from that board's own goroutine:
	// it must be safe to call concurrently.
	Events func(Event)
}

// VerifyResult counts QA's outcomes.
type VerifyResult struct {
	Verified, Failed int
	Failures         []string // "port/device: reason"
	// NotChecked boards could not be judged (the platform or broker could
	// not be reached, the board did not answer): verify them again.
	NotChecked int
	Unchecked  []string // "port/device: reason"
}

// Verify checks boards (or, without ports, the ledger's burned units) against
// the ledger, the platform and the broker, and records each outcome in the
// ledger: verified, or failed with the reason.
func Verify(ctx context.Context, o VerifyOptions) (VerifyResult, error) {
	if o.OpTimeout <= 0 {
		o.OpTimeout = 20 * time.Second
	}
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	if o.Gateway {
		if err := checkGatewayOptions(o); err != nil {
			return VerifyResult{}, err
		}
	}
	var (
		mu  sync.Mutex
		res VerifyResult
	)
	record := func(e Event) {
		e.Time = time.Now()
		e.Platform, e.Product = o.Platform, o.Product
		who := e.DeviceName
		if who == "" {
			who = e.Port
		}
		mu.Lock()
		switch e.Stage {
		case StageVerified:
			res.Verified++
		case StageNotChecked:
			res.NotChecked++
			res.Unchecked = append(res.Unchecked, who+": "+e.Err)
		default:
			res.Failed++
			res.Failures = append(res.Failures, who+": "+e.Err)
		}
		mu.Unlock()
		o.Events(e)
	}

	if o.Ports == nil {
		var units []ledger.Unit
		err := o.Ledger.EachUnit(ledger.Filter{Platform: o.Platform, Product: o.Product}, func(u ledger.Unit) error {
			if u.State == ledger.Burned || u.State == ledger.Verified {
				units = append(units, u)
			}
			return nil
		})
		if err != nil {
			return res, err
		}
		if len(units) == 0 {
			return res, fmt.Errorf("no burned boards of %s product %s in the ledger", o.Platform, o.Product)
		}
		for _, u := range units {
			record(checkUnit(ctx, o, u, nil, u.Port))
		}
		sort.Strings(res.Failures)
		sort.Strings(res.Unchecked)
		return res, nil
	}

	paths, err := o.Ports()
	if err != nil {
		return res, err
	}
	if len(paths) == 0 {
		return res, fmt.Errorf("%w: check --ports and that the boards are plugged in", ErrNoPorts)
	}
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Add(1)
		go func(path string) {
			defer wg.Done()
			record(verifyPort(context.WithoutCancel(ctx), o, path))
		}(p)
	}
	wg.Wait()
	sort.Strings(res.Failures)
	sort.Strings(res.Unchecked)
	return res, nil
}

// verifyPort identifies the board on path and checks it.
func verifyPort(ctx context.Context, o VerifyOptions, path string) Event {
	b, err := o.Open(path)
	if err != nil {
		return Event{Port: path, Stage: StageFailed, Err: err.Error()}
	}
	defer b.Close()
	c, cancel := context.WithTimeout(ctx, o.OpTimeout)
	hw, err := b.Identify(c)
	cancel()
	if err != nil {
		// A board that does not answer is not judged: nothing is known of it.
		return Event{Port: path, Stage: StageNotChecked, Err: "identify: " + err.Error(), Cause: err}
	}
	u, ok, err := o.Ledger.UnitByHW(hw)
	if err != nil {
		return Event{Port: path, HWID: hw, Stage: StageFailed, Err: err.Error()}
	}
	if !ok {
		return Event{Port: path, HWID: hw, Stage: StageFailed, Err: fmt.Sprintf("board %s is not in the ledger: burn it first (iotburn burn --port %s)", hw, path)}
	}
	return checkUnit(ctx, o, u, b, path)
}

// checkUnit runs the checks on one unit (with its board when b is not nil)
// and records the outcome in the ledger.
func checkUnit(ctx context.Context, o VerifyOptions, u ledger.Unit, b Board, port string) Event {
	ev := Event{Port: port, HWID: u.HWID, DeviceName: u.Cred.DeviceName, Fingerprint: u.Cred.SecretFingerprint(), Attempt: u.Attempts}
	fail := func(err error) Event {
		ev.Stage, ev.Err, ev.Cause = StageFailed, err.Error(), err
		if !boardsFault(err) {
			// Not the board's fault: say so, and leave its state alone.
			ev.Stage = StageNotChecked
			return ev
		}
		if u.State != ledger.Void {
			if lerr := o.Ledger.Fail(u.ID, "verify: "+ev.Err); lerr != nil {
				ev.Err += "; and the ledger could not record it: " + lerr.Error()
			}
		}
		return ev
	}
	if u.Cred.Platform != o.Platform || u.Cred.ProductID != o.Product {
		ev.Stage, ev.Err = StageFailed, fmt.Sprintf("board %s belongs to %s product %s, not %s %s", u.HWID, u.Cred.Platform, u.Cred.ProductID, o.Platform, o.Product)
		return ev
	}
	if u.State != ledger.Burned && u.State != ledger.Verified {
		ev.Stage, ev.Err = StageFailed, fmt.Sprintf("board %s is %s in the ledger, not burned: burn it again first", u.HWID, u.State)
		return ev
	}
	op := func(f func(context.Context) error) error {
		c, cancel := context.WithTimeout(ctx, o.OpTimeout)
		defer cancel()
		return f(c)
	}
	if kb, ok := b.(kitBurned); ok && kb.BurnedWithKit(o.Platform) && !o.SubDevices {
		// A gateway's kit is part of what the line burned (batch): the
		// board is checked for it, --gateway or not.
		if _, err := attachKit(o.Ledger, o.Platform, o.Product, &u.Cred); err != nil {
			return fail(err)
		}
	}
	cred := u.Cred // what logs in: the device's credential
	var clientID, token string
	booted := false // the board registered and logged in itself, the platform saw it
	switch {
	case b != nil && o.Mode.ProductLevel():
		pc := u.Cred
		pc.DeviceSecret, pc.ProductSecret = "", o.ProductSecret
		if err := op(func(c context.Context) error { return b.Verify(c, pc) }); err != nil {
			return fail(fmt.Errorf("checking the product's credential on the board: %w", err))
		}
		if !o.Register {
			break
		}
		if ab, ok := b.(appBooting); ok {
			var res AppResult
			if err := op(func(c context.Context) (err error) { res, err = ab.BootApp(c, o.Mode, u.Cred, o.Cloud); return err }); err != nil {
				return fail(fmt.Errorf("the board's own registration and login: %w", err))
			}
			// What the board holds now: the secret the platform issued it
			// where the platform shows one, else the product's key.
			ev.Fingerprint = registry.Fingerprint(res.DeviceSecret)
			if res.DeviceSecret == "" {
				ev.Fingerprint = registry.Fingerprint(o.ProductSecret)
			}
			ev.MQTT = "connected"
			booted = true
			break
		}
		sr, ok := b.(selfRegistering)
		if !ok {
			return fail(fmt.Errorf("this board cannot be told to register itself"))
		}
		if err := op(func(c context.Context) error { return sr.Register(c, o.Mode) }); err != nil {
			return fail(fmt.Errorf("dynamic registration: %w", err))
		}
		var err error
		if o.Mode == ModeRegistrationFree {
			err = op(func(c context.Context) (err error) { clientID, token, err = sr.Token(c); return err })
		} else {
			err = op(func(c context.Context) (err error) { cred, err = sr.DeviceCredential(c, u.Cred, o.Cloud); return err })
		}
		if err != nil {
			return fail(fmt.Errorf("after registration: %w", err))
		}
		// What the board obtained, by fingerprint: its own secret or token.
		ev.Fingerprint = registry.Fingerprint(cred.DeviceSecret + token)
	case b != nil && o.SubDevices:
		sc := u.Cred
		sc.DeviceSecret, sc.SubDevice = "", true
		if err := op(func(c context.Context) error { return b.Verify(c, sc) }); err != nil {
			return fail(fmt.Errorf("checking the sub-device's product and name on the board: %w", err))
		}
		ev.Fingerprint = ""
	case b != nil:
		if err := op(func(c context.Context) error { return b.Verify(c, u.Cred) }); err != nil {
			return fail(fmt.Errorf("checking the credential on the board: %w", err))
		}
	}
	// A registration-free device is known to the platform by its token, not
	// as a listed device: the broker login is its check.
	if o.Cloud != nil && o.Mode != ModeRegistrationFree && !booted {
		var d registry.Device
		err := op(func(c context.Context) (err error) {
			d, err = o.Cloud.Device(c, o.Product, u.Cred.DeviceName)
			return err
		})
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return fail(fmt.Errorf("device %s does not exist on the platform (deleted?): void it and burn the board again: %w", u.Cred.DeviceName, registry.ErrNotFound))
		case err != nil:
			return fail(fmt.Errorf("platform check: %w", err))
		case !d.Enabled:
			return fail(fmt.Errorf("device %s is disabled on the platform: %w", u.Cred.DeviceName, errDisabled))
		}
	}
	switch {
	case booted:
		// Its own login counts, seen by the platform: a second login from
		// the station would prove nothing more (and there is no secret or
		// token to make it with).
	case token != "" && o.TokenLogin != nil:
		if err := op(func(c context.Context) error { return o.TokenLogin(c, u.Cred, clientID, token) }); err != nil {
			return fail(fmt.Errorf("mqtt login: %w", err))
		}
		ev.MQTT = "connected"
	case o.SubDevices:
		// It logs in through its gateway, with the secret its gateway
		// obtained: nothing to log in with here.
	case o.Login != nil && (!o.Mode.ProductLevel() || o.Register):
		if err := op(func(c context.Context) error { return o.Login(c, cred) }); err != nil {
			return fail(fmt.Errorf("mqtt login: %w", err))
		}
		ev.MQTT = "connected"
	}
	// A board that registered itself holds the key the platform gave it
	// then (checked against the platform above): the ledger keeps that one.
	rekeyed := ""
	if o.Mode.ProductLevel() && cred.DeviceSecret != "" && cred.DeviceSecret != u.Cred.DeviceSecret {
		rekeyed = cred.DeviceSecret
	}
	if o.Gateway {
		n, err := checkGateway(ctx, o, u, b)
		if err != nil {
			return fail(fmt.Errorf("gateway: %w", err))
		}
		ev.SubDevices = n
	}
	if err := o.Ledger.VerifiedWithKey(u.ID, rekeyed); err != nil {
		return fail(err)
	}
	ev.Stage = StageVerified
	return ev
}

// selfRegistering boards run the vendor's dynamic registration themselves
// (an AT command of their firmware) and tell what they obtained.
type selfRegistering interface {
	Register(ctx context.Context, mode Mode) error
	// DeviceCredential returns the device-level credential the board now
	// holds, checked against the board (cloud is asked where the board
	// only shows a checksum of its secret).
	DeviceCredential(ctx context.Context, c registry.Credential, cloud registry.Platform) (registry.Credential, error)
	// Token returns a registration-free board's ClientID and DeviceToken.
	Token(ctx context.Context) (clientID, token string, err error)
}

// appBooting boards are judged in the product-level modes by running their
// application (an ESP32 with its kit's firmware): reset into it, the board
// registers itself and logs in, and hands nothing back; BootApp reads the
// board's console and asks the platform (the device exists, is enabled, is
// online). Afterwards the board runs its application, not its loader.
type appBooting interface {
	BootApp(ctx context.Context, mode Mode, c registry.Credential, cloud registry.Platform) (AppResult, error)
}
