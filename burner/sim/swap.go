package sim

import (
	"errors"
	"fmt"
	"os"
)

// Swap puts a new board on the same port, as a technician does when a board
// is done: the old one is unplugged, and a board with a new MAC and IMEI and
// an empty (erased) flash is plugged in its place. The old board's file is
// replaced: the simulator keeps one board per port.
func (b *Board) Swap() error {
	b.plugMu.Lock()
	defer b.plugMu.Unlock()
	if err := b.unplugLocked(); err != nil {
		return err
	}
	b.mu.Lock()
	old := b.bf
	next := boardFile{Version: fileVersion, Index: old.Index, Kind: old.Kind}
	for next.MAC == "" || next.MAC == old.MAC {
		next.MAC = newMAC()
	}
	for next.IMEI == "" || next.IMEI == old.IMEI {
		next.IMEI = newIMEI()
	}
	err := writeBoardFile(b.filePath, next)
	if err == nil {
		b.bf = next
	}
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sim: swap %s: %w", b.path, err)
	}
	// An esp32's raw flash goes with the old board; the new one starts erased.
	if err := os.Remove(flashFileName(b.filePath)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return b.plugLocked()
}
