package ledger

import (
	"database/sql"
	"errors"
)

// UnitByDevice looks up the board that holds a device's credential: the
// line asks it of the credential a board already holds before it claims
// one, so a board the ledger knows under another id (a glitch read its IMEI
// instead of its MAC) is never given a second credential. ok is false when
// no board holds the device (it may still be in the ledger, free).
func (l *Ledger) UnitByDevice(platform, product, deviceName string) (Unit, bool, error) {
	u, err := scanUnit(l.queryRow(`SELECT `+unitCols+unitFrom+`WHERE c.platform = ? AND c.product = ? AND c.device_name = ?`,
		platform, product, deviceName))
	if errors.Is(err, sql.ErrNoRows) {
		return Unit{}, false, nil
	}
	if err != nil {
		return Unit{}, false, err
	}
	return u, true, nil
}
