package at

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// Dialect is an AT firmware family: which commands identify the module,
// read the credential back and wipe it. The line protocol (conn.go) and
// RunScript are the same for all of them.
type Dialect int

const (
	// Tencent is Tencent's QCloud_AT firmware: AT+TCMODULE, AT+CGSN,
	// AT+TCDEVINFOSET?, AT+TCRESTORE (tencent.go).
	Tencent Dialect = iota
	// Aliyun is Alibaba's IDMAU AT firmware (YoC smart_living): AT+CGMR,
	// AT+MODEL?, AT+IDMAU, AT+IDMAU?, AT+IDMCON, AT+IDMSTA? (aliyun.go). It
	// reports no MAC or IMEI: Identify fails with ErrNoHardwareID.
	Aliyun
)

func (d Dialect) String() string {
	switch d {
	case Tencent:
		return registry.Tencent
	case Aliyun:
		return registry.Aliyun
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// ParseDialect maps a platform ("tencent", "aliyun") or an image format
// ("tencent-at", "aliyun-at") to its dialect, so callers holding either can
// pick the driver without a table of their own.
func ParseDialect(s string) (Dialect, error) {
	switch strings.TrimSuffix(strings.ToLower(s), "-at") {
	case registry.Tencent:
		return Tencent, nil
	case registry.Aliyun:
		return Aliyun, nil
	}
	return 0, fmt.Errorf("no AT dialect for %q: choose tencent or aliyun", s)
}

// Identify reads what the module says about itself (name, firmware, MAC,
// IMEI) with the commands of the driver's dialect. Having neither a MAC nor
// an IMEI is an error: the ledger needs one to bind the credential to; an
// Aliyun module never has them (ErrNoHardwareID, with what was read).
//
// A module that glitches (an ERROR to AT+TCMODULE, a half-received command)
// is asked again, after a fresh Hello, up to IdentifyAttempts times: a
// glitch must be a retry, never a board with fewer ids than it has, which
// would be bound to the ledger under another one.
func (d *Driver) Identify(ctx context.Context) (Identity, error) {
	if d.Dialect == Aliyun {
		return d.identifyAliyun(ctx)
	}
	var id Identity
	var err error
	for a := range IdentifyAttempts {
		if a > 0 {
			if herr := d.Hello(ctx); herr != nil {
				return id, herr
			}
		}
		id, err = d.identifyTencent(ctx)
		if errors.Is(err, ErrVanished) || ctx.Err() != nil {
			return id, err
		}
		if err == nil && id.complete {
			return id, nil
		}
	}
	// AT+TCMODULE never answered: a module without it (a cellular one) is
	// known by its IMEI alone, the same at every pass.
	return id, err
}

// IdentifyAttempts is how often Identify asks a glitching module again.
const IdentifyAttempts = 3

// Restore wipes the stored credential with the dialect's command. A real
// module may reboot after its OK, turning echo back on: call Hello before
// the next command.
func (d *Driver) Restore(ctx context.Context) error {
	if d.Dialect == Aliyun {
		return d.restoreAliyun(ctx)
	}
	return d.restoreTencent(ctx)
}

// Verify reads the credential back and compares it with want, with the
// read-back of want's platform, so the line can stay platform-neutral. An
// empty Platform means the driver's own dialect.
func (d *Driver) Verify(ctx context.Context, want registry.Credential) error {
	dl := d.Dialect
	if want.Platform != "" {
		var err error
		if dl, err = ParseDialect(want.Platform); err != nil {
			return fmt.Errorf("verify %s on %s: %w", want.DeviceName, d.port.Name(), err)
		}
	}
	if dl == Aliyun {
		return d.VerifyAliyun(ctx, want)
	}
	return d.VerifyTencent(ctx, want)
}
