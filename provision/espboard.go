package provision

import (
	"context"
	"fmt"
	"strings"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// FlashRegion is an image written at an offset of every board (bootloader,
// partition table, application).
type FlashRegion struct {
	Name   string // for errors: the file it came from
	Offset uint32
	Data   []byte
}

// ESPOptions configures ESP32 boards burned through the ROM bootloader.
type ESPOptions struct {
	Baud     int    // the ROM's line rate (115200)
	FastBaud int    // switch to this once connected (0: stay at Baud)
	Offset   uint32 // where each board's credential partition goes (0x9000)
	// Format renders a credential's partition; Verify renders it again to
	// compare the board's flash MD5 with it.
	Format   templates.Format
	Common   []FlashRegion // written to every board in the same connection
	Compress bool          // deflate on the wire (FLASH_DEFL_*)
	// ReadBack makes Verify also read the partition back (READ_FLASH_SLOW)
	// and check every key, for QA: slower than the MD5, but it tells which
	// key is wrong.
	ReadBack bool
}

// checker is a format that can check a partition read back from a board.
type checker interface {
	Check(img []byte, c registry.Credential) error
}

// OpenESPBoard opens ESP32 boards: the board's identity is its factory MAC
// from eFuse; every region written is MD5-verified by the ROM.
func OpenESPBoard(o ESPOptions) OpenBoard {
	return func(path string) (Board, error) {
		p, err := burner.Open(path, o.Baud)
		if err != nil {
			return nil, err
		}
		return &espBoard{port: p, ldr: esprom.New(p), o: o}, nil
	}
}

type espBoard struct {
	port     burner.Port
	ldr      *esprom.Loader
	o        ESPOptions
	prepared bool
	mac      string
}

// MAC and IMEI are the board's own ids, for product-level names.
func (b *espBoard) MAC() string  { return b.mac }
func (b *espBoard) IMEI() string { return "" }

func (b *espBoard) Identify(ctx context.Context) (string, error) {
	if err := b.ldr.Connect(ctx); err != nil {
		return "", err
	}
	mac, err := b.ldr.MAC(ctx)
	if err != nil {
		return "", err
	}
	b.mac = strings.ToLower(mac.String())
	return b.mac, nil
}

// prepare attaches the SPI flash and raises the baud rate, once a connection.
func (b *espBoard) prepare(ctx context.Context) error {
	if b.prepared {
		return nil
	}
	if err := b.ldr.Attach(ctx); err != nil {
		return err
	}
	if b.o.FastBaud > 0 && b.o.FastBaud != b.o.Baud {
		if err := b.ldr.ChangeBaud(ctx, b.o.FastBaud); err != nil {
			return err
		}
	}
	b.prepared = true
	return nil
}

// Write burns the common regions, then the board's own partition, each
// verified by the ROM's MD5 before the next.
func (b *espBoard) Write(ctx context.Context, image []byte) error {
	if err := b.prepare(ctx); err != nil {
		return err
	}
	regions := append(append([]FlashRegion(nil), b.o.Common...), FlashRegion{Name: "credential partition", Offset: b.o.Offset, Data: image})
	for _, r := range regions {
		if err := b.ldr.WriteFlash(ctx, r.Offset, r.Data, b.o.Compress, nil); err != nil {
			return fmt.Errorf("%s at 0x%x: %w", r.Name, r.Offset, err)
		}
		if err := b.ldr.VerifyFlash(ctx, r.Offset, r.Data); err != nil {
			return fmt.Errorf("%s at 0x%x: %w", r.Name, r.Offset, err)
		}
	}
	return nil
}

// Verify compares the flash's MD5 at the partition offset with the
// credential's partition rendered again (rendering is deterministic).
func (b *espBoard) Verify(ctx context.Context, c registry.Credential) error {
	if err := b.prepare(ctx); err != nil {
		return err
	}
	image, err := b.o.Format.Render(c)
	if err != nil {
		return err
	}
	if !b.o.ReadBack {
		return b.ldr.VerifyFlash(ctx, b.o.Offset, image)
	}
	ck, ok := b.o.Format.(checker)
	if !ok {
		return b.ldr.VerifyFlash(ctx, b.o.Offset, image)
	}
	got, err := b.ldr.ReadFlash(ctx, b.o.Offset, uint32(len(image)))
	if err != nil {
		return err
	}
	if err := ck.Check(got, c); err != nil {
		return err
	}
	// Keys right but other bytes not: still not the partition that was burned.
	return b.ldr.VerifyFlash(ctx, b.o.Offset, image)
}

func (b *espBoard) Close() error { return b.port.Close() }
