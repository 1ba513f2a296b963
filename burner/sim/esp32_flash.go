package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ESP32FlashSize is the simulated ESP32's SPI flash: 4 MB, the common module.
const ESP32FlashSize = 4 << 20

// flashFileName is DIR/board-NN.flash beside DIR/board-NN.json: the raw
// flash of an esp32 board, byte for byte as the chip would hold it, so tests
// and people can look at it with cmp or hexdump.
func flashFileName(boardJSON string) string {
	return strings.TrimSuffix(boardJSON, ".json") + ".flash"
}

// ensureFlashFile creates a fresh, erased (all 0xFF) flash file if there is
// none, whole or not at all (replaceFile).
func ensureFlashFile(path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return replaceFile(path, func(w io.Writer) error {
		erased := bytes.Repeat([]byte{0xFF}, 64<<10)
		for off := 0; off < ESP32FlashSize; off += len(erased) {
			if _, err := w.Write(erased); err != nil {
				return err
			}
		}
		return nil
	})
}

// readFlashFile reads n bytes at off from a flash file.
func readFlashFile(path string, off, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+n > ESP32FlashSize {
		return nil, fmt.Errorf("sim: flash read 0x%x+%d is outside the %d-byte flash", off, n, ESP32FlashSize)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make([]byte, n)
	if _, err := f.ReadAt(out, int64(off)); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// updateFlashFile applies change to n bytes at off before returning: the
// ROM answers a write only once it is in flash. Written, not fsynced: the
// file then outlives any process, and a host crash is not what the
// simulator models (replaceFile says why).
func updateFlashFile(path string, off, n int, change func(region []byte)) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	region := make([]byte, n)
	if _, err := f.ReadAt(region, int64(off)); err != nil {
		return err
	}
	change(region)
	_, err = f.WriteAt(region, int64(off))
	return err
}

// ReadFlash reads n bytes at off of an esp32 board's flash.
func (b *Board) ReadFlash(off, n int) ([]byte, error) {
	if b.kind != "esp32" {
		return nil, fmt.Errorf("sim: board %s is a %s, it has no raw flash", b.path, b.kind)
	}
	return readFlashFile(flashFileName(b.filePath), off, n)
}

// LoadFlashImage reads the whole flash of esp32 board index in dir without
// running anything, as a restarted simulator would find it.
func LoadFlashImage(dir string, index int) ([]byte, error) {
	return os.ReadFile(flashFileName(boardFileName(dir, index)))
}
