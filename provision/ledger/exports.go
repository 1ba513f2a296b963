package ledger

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// ExportKind says which credentials an export hands out.
type ExportKind int

const (
	// ExportFree takes free credentials (oldest first) and makes them
	// Exported: the line never gives them to a board, since the image may be
	// flashed into one elsewhere. A named device already exported is written
	// again.
	ExportFree ExportKind = iota
	// ExportAgain writes again the credentials exported before (files lost,
	// or an export cut short); nothing changes state.
	ExportAgain
	// ExportBound writes the credentials boards hold, each for its own board
	// (re-flashing it with another tool); nothing changes state.
	ExportBound
)

// ExportRequest is one `iotburn image` for a product.
type ExportRequest struct {
	Platform, Product string
	Kind              ExportKind
	// Device, if set, is the one device to export.
	Device string
	// Max bounds an ExportFree of the whole product (0: every free one).
	Max int
	// Station and Note go into each event: where, and what was written
	// (format and directory). Note must hold no secret.
	Station, Note string
	// Check, if set, is called in the transaction for each credential
	// before it is recorded; an error rolls the whole export back. Keep it
	// cheap: the transaction holds the ledger's write lock, which the line
	// waits on.
	Check func(registry.Credential) error
}

// ExportItem is one credential an export handed out.
type ExportItem struct {
	Cred registry.Credential
	// From is the credential's state before: Created (a free one), Exported,
	// or the state of the unit holding it (ExportBound).
	From State
	// HWID is the board holding it (ExportBound), "".
	HWID string
}

// Export hands out credentials for images written outside the line, in one
// transaction that records each as an 'exported' event (no unit: an image
// written is not a step of a board's history; hw_id names the board for
// ExportBound) and, for ExportFree, makes each Exported. It never hands out
// a credential on one board for another: a named device that a board holds
// is refused (ErrTaken, naming the board) unless Kind is ExportBound, and
// ExportBound hands out only credentials boards hold. Credentials without a
// secret (product-level names, whose boards fetch their own) are not
// exported. Void ones never are (ErrVoid).
//
// Nothing found is ErrNoCredentials (ExportFree) or ErrNotFound. Record the
// export before writing any file: a crash after it leaves exported
// credentials without files (ExportAgain writes them), never a file with a
// credential the line may still give to a board.
func (l *Ledger) Export(r ExportRequest) ([]ExportItem, error) {
	if r.Platform == "" || r.Product == "" {
		return nil, errors.New("ledger: export needs a platform and a product")
	}
	if r.Max < 0 {
		return nil, fmt.Errorf("ledger: export of %d credentials", r.Max)
	}
	var out []ExportItem
	err := l.write(func(tx *txn) error {
		out = nil
		now := l.nowMS()
		var err error
		if r.Device != "" {
			out, err = exportOne(tx, r)
		} else {
			out, err = exportMany(tx, r)
		}
		if err != nil {
			return err
		}
		mark, err := tx.Prepare(`UPDATE credentials SET state = 'exported' WHERE platform = ? AND product = ? AND device_name = ? AND state = 'free'`)
		if err != nil {
			return err
		}
		defer mark.Close()
		event, err := tx.Prepare(`INSERT INTO events (time, hw_id, station, platform, product, device_name, from_state, to_state, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'exported', ?)`)
		if err != nil {
			return err
		}
		defer event.Close()
		for _, e := range out {
			if r.Check != nil {
				if err := r.Check(e.Cred); err != nil {
					return err
				}
			}
			if e.From == Created {
				res, err := mark.Exec(r.Platform, r.Product, e.Cred.DeviceName)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n != 1 {
					return fmt.Errorf("ledger: device %s is no longer free: %w", e.Cred.DeviceName, ErrState)
				}
			}
			note := r.Note
			if e.Cred.DeviceSecret != "" {
				note = strings.ReplaceAll(note, e.Cred.DeviceSecret, "[secret]")
			}
			if e.Cred.DevicePrivateKey != "" {
				note = strings.ReplaceAll(note, e.Cred.DevicePrivateKey, "[secret]")
			}
			if _, err := event.Exec(now, e.HWID, r.Station, r.Platform, r.Product, e.Cred.DeviceName, string(e.From), note); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export from %s/%s: %w", r.Platform, r.Product, err)
	}
	return out, nil
}

// hasSecret is true of a credentials row that holds what a board needs to log in by itself: a device secret, or a
// certificate's private key. Product-level names hold neither. Its columns
// are unqualified: no table joined to credentials has them.
const hasSecret = `(secret != '' OR device_private_key != '')`

// exportOne picks the named device, if this kind of export may hand it out.
func exportOne(tx *txn, r ExportRequest) ([]ExportItem, error) {
	var c registry.Credential
	var state, reason string
	err := tx.QueryRow(`SELECT platform, product, device_name, secret, region, device_cert, device_private_key, state, void_reason FROM credentials
		WHERE platform = ? AND product = ? AND device_name = ?`+tx.d.forUpdate, r.Platform, r.Product, r.Device).
		Scan(&c.Platform, &c.ProductID, &c.DeviceName, &c.DeviceSecret, &c.Region, &c.DeviceCert, &c.DevicePrivateKey, &state, &reason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ledger: no device %s: create it with `iotburn create`: %w", r.Device, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if state == "void" {
		return nil, fmt.Errorf("ledger: device %s was voided (%s): %w", r.Device, reason, ErrVoid)
	}
	if c.DeviceSecret == "" && c.DevicePrivateKey == "" {
		return nil, fmt.Errorf("ledger: device %s has no secret in the ledger (a product-level name: its board fetches its own): "+
			"write the product's image with --per-product: %w", r.Device, ErrState)
	}
	var hw string
	var unitState State
	err = tx.QueryRow(`SELECT u.hw_id, u.state FROM units u JOIN credentials c ON c.id = u.credential_id
		WHERE c.platform = ? AND c.product = ? AND c.device_name = ?`, r.Platform, r.Product, r.Device).Scan(&hw, &unitState)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	onBoard := err == nil
	switch {
	case r.Kind == ExportBound && !onBoard:
		return nil, fmt.Errorf("ledger: device %s is on no board (%s): without --bound its image is exported and kept off the line: %w",
			r.Device, state, ErrNotFound)
	case r.Kind == ExportBound:
		return []ExportItem{{Cred: c, From: unitState, HWID: hw}}, nil
	case onBoard:
		return nil, fmt.Errorf("ledger: device %s is on board %s (%s): an image of it could put it in a second board; "+
			"to re-flash that same board, use --bound: %w", r.Device, hw, unitState, ErrTaken)
	case r.Kind == ExportAgain && state != string(Exported):
		return nil, fmt.Errorf("ledger: device %s was never exported (%s): %w", r.Device, state, ErrNotFound)
	case state == string(Exported):
		return []ExportItem{{Cred: c, From: Exported}}, nil
	}
	return []ExportItem{{Cred: c, From: Created}}, nil
}

// exportMany picks every credential of the kind (up to Max for ExportFree).
func exportMany(tx *txn, r ExportRequest) ([]ExportItem, error) {
	var q string
	args := []any{r.Platform, r.Product}
	switch r.Kind {
	case ExportFree:
		// Locked, skipping those a station is claiming at this instant.
		q = `SELECT platform, product, device_name, secret, region, device_cert, device_private_key, 'created', '' FROM credentials
			WHERE platform = ? AND product = ? AND state = 'free' AND ` + hasSecret + ` ORDER BY id`
		if r.Max > 0 {
			q += ` LIMIT ?`
			args = append(args, r.Max)
		}
		q += tx.d.skipLocked
	case ExportAgain:
		q = `SELECT platform, product, device_name, secret, region, device_cert, device_private_key, 'exported', '' FROM credentials
			WHERE platform = ? AND product = ? AND state = 'exported' AND ` + hasSecret + ` ORDER BY id`
	case ExportBound:
		q = `SELECT c.platform, c.product, c.device_name, c.secret, c.region, c.device_cert, c.device_private_key, u.state, u.hw_id
			FROM units u JOIN credentials c ON c.id = u.credential_id
			WHERE c.platform = ? AND c.product = ? AND u.state != 'void' AND c.state = 'taken' AND ` + hasSecret + ` ORDER BY u.id`
	default:
		return nil, fmt.Errorf("ledger: unknown export kind %d", r.Kind)
	}
	rows, err := tx.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExportItem
	for rows.Next() {
		var e ExportItem
		if err := rows.Scan(&e.Cred.Platform, &e.Cred.ProductID, &e.Cred.DeviceName, &e.Cred.DeviceSecret, &e.Cred.Region,
			&e.Cred.DeviceCert, &e.Cred.DevicePrivateKey, &e.From, &e.HWID); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) > 0 {
		return out, nil
	}
	var total int
	if err := tx.QueryRow(`SELECT count(*) FROM credentials WHERE platform = ? AND product = ?`, r.Platform, r.Product).Scan(&total); err != nil {
		return nil, err
	}
	switch r.Kind {
	case ExportFree:
		return nil, fmt.Errorf("ledger: no free credential with a secret (%d in the ledger, all on boards, exported or void): "+
			"create more with `iotburn create`: %w", total, ErrNoCredentials)
	case ExportAgain:
		return nil, fmt.Errorf("ledger: no credential was exported before (%d in the ledger): %w", total, ErrNotFound)
	}
	return nil, fmt.Errorf("ledger: no board holds a credential of this product (%d in the ledger): %w", total, ErrNotFound)
}

// HasCertificates reports whether platform/product has a certificate
// device (one with a private key) that is not void: its boards need a
// format that can carry a certificate.
func (l *Ledger) HasCertificates(platform, product string) (bool, error) {
	var n int
	err := l.queryRow(`SELECT count(*) FROM (SELECT 1 FROM credentials WHERE platform = ? AND product = ? AND state != 'void'
		AND device_private_key != '' LIMIT 1) AS one`, platform, product).Scan(&n)
	return n > 0, err
}
