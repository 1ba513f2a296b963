package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
	"github.com/iotburn/iotburn/templates/nvs"
)

// DefaultPartitionName is where the device SDKs read their credentials:
// Espressif's Tencent kit (espressif/esp-qcloud, Kconfig
// CONFIG_QCLOUD_FACTRY_PARTITION_NAME "fctry") and Aliyun kit
// (espressif/esp-aliyun, wrappers/wrapper_product.c MFG_PARTITION_NAME
// "fctry") both open the NVS partition named fctry.
const DefaultPartitionName = "fctry"

// ESPOptions configures ESP32 boards burned through the ROM bootloader.
type ESPOptions struct {
	// Baud is esptool's -b: every board is connected at the ROM's 115200,
	// then switched to Baud for the rest (0 or 115200: stay).
	Baud int
	// Format renders a credential's partition; its Size 0 means the size of
	// the partition it goes into (the table's), else it must fit in it.
	Format nvs.Format
	// Common are the images every board gets in the same connection
	// (bootloader, partition table, application).
	Common    []flashmap.Region
	Partition CredentialPartition
	Compress  bool // deflate on the wire (FLASH_DEFL_*)
	// Stub, if set, is uploaded into each board's RAM and run before
	// anything is written: Espressif's flasher stub, read from an esptool
	// installation (esprom.LoadStub). It writes while it receives, in 16 KB
	// blocks, as esptool's default mode does.
	Stub *esprom.Stub
	// Log, if set, gets every ROM command (name, size, status, time) at
	// debug level: the wire log of -v.
	Log *slog.Logger
	// ReadBack makes Verify also read the partition back (READ_FLASH_SLOW)
	// and check every key, for QA: slower than the MD5, but it tells which
	// key is wrong.
	ReadBack bool
}

// CredentialPartition says where each board's own partition goes.
type CredentialPartition struct {
	Name string // the partition's name in the table (DefaultPartitionName)
	// Offset, if set, overrides the table (--flash-offset); the region must
	// still be inside an NVS partition of the table where one is known.
	Offset uint32
	// Table is a partition table given beside the images (--partition-table
	// CSV). A binary table among Common is found by itself and wins; the two
	// must agree on the credential partition.
	Table *flashmap.Table
	// TableOffset is where a board's own table is read when neither the
	// pass nor Table has one (0: flashmap.TableOffset, 0x8000).
	TableOffset uint32
}

// espPlan is what every board of a line shares: the images, prepared once,
// and what is known of the credential partition before any board is seen.
type espPlan struct {
	o      ESPOptions
	images []*esprom.Image
	table  *flashmap.Table  // known before the boards: in the pass or given
	cred   *flashmap.Region // known before the boards: offset and size
	format nvs.Format       // sized when cred is known
	rates  sync.Map         // port path → the line rate the board was last found at
}

// ErrNoPartitionTable is a board whose credential partition cannot be found:
// no table in the pass, none given, none on the board, and no offset.
var ErrNoPartitionTable = errors.New("no partition table to find the credential partition in")

// OpenESPBoard checks the flash map as far as it is known before any board
// is seen (every image sector-aligned, none overlapping another or the
// credential partition, each inside its partition, the credential inside an
// NVS partition), prepares the shared images once (deflated once for the
// whole line), and returns how to open the boards. What depends on the board
// (its flash size, its own partition table) is checked when it is
// identified, before anything is claimed or written.
func OpenESPBoard(o ESPOptions) (OpenBoard, error) {
	if o.Partition.Name == "" {
		o.Partition.Name = DefaultPartitionName
	}
	if o.Partition.TableOffset == 0 {
		o.Partition.TableOffset = flashmap.TableOffset
	}
	p := &espPlan{o: o, table: o.Partition.Table}
	var found *flashmap.Table
	for _, r := range o.Common {
		if !flashmap.LooksLikeTable(r.Data) {
			continue
		}
		t, err := flashmap.ReadTableBinary(r.Data, r.Offset, r.Name)
		if err != nil {
			return nil, err
		}
		if found != nil {
			return nil, fmt.Errorf("two partition tables in one pass (%s at %s and %s at %s): write one", found.Source, flashmap.Hex(uint64(found.Offset)), t.Source, flashmap.Hex(uint64(t.Offset)))
		}
		found = t
	}
	if found != nil {
		if p.table != nil {
			if err := sameCredential(found, p.table, o.Partition.Name); err != nil {
				return nil, err
			}
		}
		p.table = found
	}
	if p.table != nil || o.Partition.Offset != 0 {
		cred, f, err := credentialRegion(o, p.table)
		if err != nil {
			return nil, err
		}
		p.cred, p.format = &cred, f
	}
	if err := flashmap.Check(p.regions(p.cred), 0, p.table); err != nil {
		return nil, err
	}
	for _, r := range o.Common {
		p.images = append(p.images, esprom.NewImage(r.Name, r.Offset, r.Data, o.Compress))
	}
	return p.open, nil
}

// regions is the whole map of a pass: the shared images and, once known,
// the credential partition.
func (p *espPlan) regions(cred *flashmap.Region) []flashmap.Region {
	rs := append([]flashmap.Region(nil), p.o.Common...)
	if cred != nil {
		rs = append(rs, *cred)
	}
	return rs
}

// credentialRegion finds the credential partition in table (nil: only
// Offset is known) and sizes the format for it.
func credentialRegion(o ESPOptions, table *flashmap.Table) (flashmap.Region, nvs.Format, error) {
	f := o.Format
	name := "credential partition " + o.Partition.Name
	offset, size := o.Partition.Offset, uint32(f.Size)
	if table != nil {
		var part flashmap.Partition
		var err error
		if offset != 0 {
			var ok bool
			if part, ok = table.At(offset); !ok {
				return flashmap.Region{}, f, &flashmap.UnsafeError{
					Problem: fmt.Sprintf("--flash-offset %s is not inside any partition of %s", flashmap.Hex(uint64(offset)), table.Source),
					Fix:     fmt.Sprintf("leave --flash-offset out to use the partition named %s", o.Partition.Name)}
			}
			name = "credential partition at --flash-offset"
		} else if part, err = table.Find(o.Partition.Name); err != nil {
			return flashmap.Region{}, f, fmt.Errorf("%w: name the partition the firmware reads with --partition-name, or give --flash-offset", err)
		} else {
			offset = part.Offset
		}
		if size == 0 {
			size = uint32(part.End() - uint64(offset))
		}
	}
	if size == 0 {
		size = nvs.DefaultSize
	}
	f.Size = int(size)
	return flashmap.Region{Name: name, Offset: offset, Size: size, Credential: true}, f, nil
}

// sameCredential refuses a binary table and a CSV that disagree on where the
// credential partition is.
func sameCredential(a, b *flashmap.Table, name string) error {
	pa, ea := a.Find(name)
	pb, eb := b.Find(name)
	if (ea == nil) != (eb == nil) || (ea == nil && (pa.Offset != pb.Offset || pa.Size != pb.Size)) {
		return fmt.Errorf("the partition table written in this pass (%s) and %s disagree on partition %s: give one of them", a.Source, b.Source, name)
	}
	return nil
}

func (p *espPlan) open(path string) (Board, error) {
	port, err := burner.Open(path, burner.DefaultBaud)
	if err != nil {
		return nil, err
	}
	ldr := esprom.New(port)
	ldr.Log = p.o.Log
	ldr.Rates = []int{burner.DefaultBaud}
	if last, ok := p.rates.Load(path); ok && last.(int) != burner.DefaultBaud {
		ldr.Rates = []int{last.(int), burner.DefaultBaud}
	}
	if p.o.Baud > 0 && p.o.Baud != burner.DefaultBaud && !containsRate(ldr.Rates, p.o.Baud) {
		ldr.Rates = append(ldr.Rates, p.o.Baud)
	}
	return &espBoard{port: port, ldr: ldr, plan: p}, nil
}

func containsRate(rs []int, r int) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

type espBoard struct {
	port burner.Port
	ldr  *esprom.Loader
	plan *espPlan
	mac  string

	prepared bool
	cred     flashmap.Region // this board's credential partition
	format   nvs.Format      // sized for it
	progress func(done, total int)
}

// MAC and IMEI are the board's own ids, for product-level names.
func (b *espBoard) MAC() string  { return b.mac }
func (b *espBoard) IMEI() string { return "" }

// SelfTimed: every ROM command has its own deadline, scaled by the bytes it
// moves at the line rate (esptool's per-megabyte timeouts); a 4 MB image at
// 115200 takes minutes and must not be cut short by a fixed deadline.
func (b *espBoard) SelfTimed() {}

// OnProgress makes Write report bytes written.
func (b *espBoard) OnProgress(f func(done, total int)) { b.progress = f }

func (b *espBoard) Identify(ctx context.Context) (string, error) {
	if err := b.ldr.Connect(ctx); err != nil {
		return "", err
	}
	b.plan.rates.Store(b.port.Name(), b.ldr.Baud())
	mac, err := b.ldr.MAC(ctx)
	if err != nil {
		return "", err
	}
	b.mac = strings.ToLower(mac.String())
	return b.mac, nil
}

// Prepare attaches the flash, switches to the flash rate, reads the flash's
// size (JEDEC id) and, where the pass brings no table, the board's own
// partition table, finds the credential partition and checks the whole map
// against this board. Nothing is written; a refusal leaves the board as it
// was. It returns the format that renders this board's partition.
func (b *espBoard) Prepare(ctx context.Context) (templates.Format, error) {
	if b.prepared {
		return b.format, nil
	}
	if st := b.plan.o.Stub; st != nil {
		if err := b.ldr.RunStub(ctx, st); err != nil {
			return nil, err
		}
	}
	if err := b.ldr.Attach(ctx); err != nil {
		return nil, err
	}
	if r := b.plan.o.Baud; r > 0 && r != b.ldr.Baud() {
		if err := b.ldr.ChangeBaud(ctx, r); err != nil {
			return nil, err
		}
		b.plan.rates.Store(b.port.Name(), b.ldr.Baud())
	}
	id, err := b.ldr.FlashID(ctx)
	if err != nil {
		return nil, err
	}
	size := esprom.FlashSizeFromID(id)
	if size == 0 {
		return nil, fmt.Errorf("the flash of the board on %s reports JEDEC id %#06x, whose size iotburn cannot tell: check the board, or burn it with esptool --flash_size", b.port.Name(), id)
	}
	if size != b.ldr.FlashSize {
		b.ldr.FlashSize = size
		if err := b.ldr.Attach(ctx); err != nil { // SPI_SET_PARAMS with the real size
			return nil, err
		}
	}
	table := b.plan.table
	cred, format := b.plan.cred, b.plan.format
	if cred == nil {
		if table, err = b.readTable(ctx); err != nil {
			return nil, err
		}
		r, f, err := credentialRegion(b.plan.o, table)
		if err != nil {
			return nil, fmt.Errorf("the board on %s: %w", b.port.Name(), err)
		}
		cred, format = &r, f
	}
	if err := flashmap.Check(b.plan.regions(cred), size, table); err != nil {
		return nil, fmt.Errorf("the board on %s (%s flash): %w", b.port.Name(), flashmap.Bytes(uint64(size)), err)
	}
	b.cred, b.format, b.prepared = *cred, format, true
	return b.format, nil
}

// readTable reads the board's own partition table, 64 bytes at a time (the
// ROM's READ_FLASH_SLOW) up to its end marker.
func (b *espBoard) readTable(ctx context.Context) (*flashmap.Table, error) {
	off := b.plan.o.Partition.TableOffset
	var buf []byte
	for len(buf) < flashmap.TableMaxLength {
		chunk, err := b.ldr.ReadFlash(ctx, off+uint32(len(buf)), 64)
		if err != nil {
			return nil, err
		}
		buf = append(buf, chunk...)
		if len(buf) == 64 && !flashmap.LooksLikeTable(buf) {
			break // not a table: no need to read on
		}
		if i := bytes.Index(buf, bytes.Repeat([]byte{0xFF}, 32)); i >= 0 && i%32 == 0 {
			break
		}
	}
	t, err := flashmap.ReadTableBinary(buf, off, fmt.Sprintf("the partition table on the board (%s)", flashmap.Hex(uint64(off))))
	if errors.Is(err, flashmap.ErrNoTable) {
		return nil, fmt.Errorf("the board on %s has no partition table at %s to find partition %s in (%v): write the table in the same pass (--flash %s=partition-table.bin), or give --partition-table FILE.csv or --flash-offset: %w",
			b.port.Name(), flashmap.Hex(uint64(off)), b.plan.o.Partition.Name, err, flashmap.Hex(uint64(off)), ErrNoPartitionTable)
	}
	return t, err
}

// Write burns the shared images, then the board's own partition, each
// verified by the ROM's MD5 before the next.
func (b *espBoard) Write(ctx context.Context, image []byte) error {
	if _, err := b.Prepare(ctx); err != nil {
		return err
	}
	if uint32(len(image)) > b.cred.Size {
		return fmt.Errorf("the credential image (%d bytes) is larger than %s", len(image), b.cred)
	}
	images := append(append([]*esprom.Image(nil), b.plan.images...), esprom.NewImage(b.cred.Name, b.cred.Offset, image, b.plan.o.Compress))
	total := 0
	for _, img := range images {
		total += img.Size()
	}
	done := 0
	for _, img := range images {
		var report func(int, int)
		if b.progress != nil {
			base := done
			report = func(d, _ int) { b.progress(base+d, total) }
		}
		if err := b.ldr.WriteImage(ctx, img, report); err != nil {
			return fmt.Errorf("%s at 0x%x: %w", img.Name, img.Offset, err)
		}
		if err := b.ldr.VerifyImage(ctx, img); err != nil {
			return fmt.Errorf("%s at 0x%x: %w", img.Name, img.Offset, err)
		}
		done += img.Size()
	}
	return nil
}

// Verify compares the flash's MD5 at the partition offset with the
// credential's partition rendered again (rendering is deterministic).
func (b *espBoard) Verify(ctx context.Context, c registry.Credential) error {
	if _, err := b.Prepare(ctx); err != nil {
		return err
	}
	image, err := b.format.Render(c)
	if err != nil {
		return err
	}
	// The ROM's MD5 is the authority (READ_FLASH_SLOW carries no checksum,
	// so a garbled read-back must not blame the board); QA reads the
	// partition back only to say which key is wrong.
	err = b.ldr.VerifyFlash(ctx, b.cred.Offset, image)
	if !errors.Is(err, esprom.ErrMismatch) || !b.plan.o.ReadBack {
		return err
	}
	got, rerr := b.ldr.ReadFlash(ctx, b.cred.Offset, uint32(len(image)))
	if rerr != nil {
		return err
	}
	if cerr := b.format.Check(got, c); cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, esprom.ErrMismatch)
	}
	return err // keys right, other bytes not: still not the partition that was burned
}

func (b *espBoard) Close() error { return b.port.Close() }
