package cmd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/pflag"

	"github.com/iotburn/iotburn/provision/ledger"
)

// envLedger names the ledger for every command when --ledger is not given:
// a SQLite file, or the postgres:// URL of the ledger a line's stations
// share (so the URL, and its password, stay off the command line).
const envLedger = "IOTBURN_LEDGER"

// defaultLedger is --ledger's default: $IOTBURN_LEDGER, else iotburn.db.
func defaultLedger() string {
	if v := os.Getenv(envLedger); v != "" {
		return v
	}
	return "iotburn.db"
}

// ledgerFlag is the global --ledger flag. Its default comes from
// IOTBURN_LEDGER; --help shows it without a password.
func ledgerFlag(fs *pflag.FlagSet, p *string) {
	fs.StringVar(p, "ledger", defaultLedger(), "the ledger holding devices, secrets and boards: a SQLite file, or the postgres://… URL of the one a line's stations share (default: $"+envLedger+", else iotburn.db)")
	fs.Lookup("ledger").DefValue = ledger.Redact(defaultLedger())
}

// ledgerMissing says why there is no ledger at --ledger to open, or nil if
// there is one: a SQLite file that does not exist (a typo would otherwise
// look like "no devices"), or a PostgreSQL database without the books.
// A PostgreSQL server that cannot be reached is said as it is.
func (g *globals) ledgerMissing() error {
	ok, err := g.ledgerExists()
	switch {
	case err != nil:
		return err
	case ok:
		return nil
	case !ledger.IsURL(g.ledger):
		return withKind(errLedger, fmt.Errorf("no ledger at %s: run `iotburn create` first, or point --ledger (or %s) at yours", g.ledger, envLedger))
	default:
		return withKind(errLedger, fmt.Errorf("no ledger in %s yet: run `iotburn create` or `iotburn ledger migrate` first, or point --ledger (or %s) at yours",
			ledger.Redact(g.ledger), envLedger))
	}
}

// ledgerExists reports whether --ledger holds books; the error is one of
// reaching them (a server down, a file unreadable), not their absence.
func (g *globals) ledgerExists() (bool, error) {
	if !ledger.IsURL(g.ledger) {
		_, err := os.Stat(g.ledger)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return err == nil, withKind(errLedger, err)
	}
	l, err := ledger.OpenReadOnly(g.ledger)
	if errors.Is(err, ledger.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, withKind(errLedger, err)
	}
	return true, l.Close()
}
