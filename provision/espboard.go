package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

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
	if errors.Is(err, esprom.ErrMismatch) && c.DeviceSecret == "" && c.ProductSecret != "" {
		// A product-level partition the board's firmware has since added
		// its DeviceSecret to (esp-aliyun wrapper_product.c
		// HAL_SetDeviceSecret, after its registration) still holds the
		// product's credential.
		if ok, rerr := b.holdsRegistered(ctx, c, len(image)); rerr == nil && ok {
			return nil
		}
	}
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

// holdsRegistered reads the partition back and reports whether it holds
// exactly the product-level credential c plus a DeviceSecret.
func (b *espBoard) holdsRegistered(ctx context.Context, c registry.Credential, n int) (bool, error) {
	keys := b.format.Keys
	if keys == (nvs.Keys{}) {
		var err error
		if keys, err = nvs.DefaultKeys(c.Platform); err != nil {
			return false, err
		}
	}
	if keys.DeviceSecret == "" {
		return false, nil
	}
	got, err := b.ldr.ReadFlash(ctx, b.cred.Offset, uint32(n))
	if err != nil {
		return false, err
	}
	items, err := nvs.Read(got)
	if err != nil {
		return false, nil
	}
	want := map[string]string{keys.ProductID: c.ProductID, keys.DeviceName: c.DeviceName, keys.ProductSecret: c.ProductSecret}
	if keys.Region != "" && c.Region != "" {
		want[keys.Region] = c.Region
	}
	delete(want, "")
	seen, secret := 0, false
	for _, it := range items {
		if it.Namespace != keys.Namespace {
			continue
		}
		v, isStr := it.Value.(string)
		switch w, ok := want[it.Key]; {
		case ok && isStr && v == w:
			seen++
		case it.Key == keys.DeviceSecret && isStr && v != "":
			secret = true
		default:
			return false, nil
		}
	}
	return secret && seen == len(want), nil
}

func (b *espBoard) Close() error { return b.port.Close() }

// An ESP32 in the product-level modes holds the product's key, and its
// application registers itself and logs in (the kits' firmware, as
// burner/sim models it from their sources). verify has it do so: BootApp
// resets the board into its application, reads what the application prints
// on its UART, and asks the platform. The board never hands back the secret
// or token it obtained, so the verdict is the console's line that settles
// it (espAppLines) and the platform's own view: the device exists, is
// enabled and is online.
//
// The reset: where the adapter has the auto-reset circuit, esptool's
// --after hard_reset (RTS pulses EN with DTR, IO0, released: the chip boots
// from flash; reference/espressif.md §2.6 HardReset). A port without modem
// lines (a pty) cannot do that: the ROM loader is told FLASH_END with reboot
// instead (and where the flasher stub is running, the stub first, whose
// reboot comes back in the ROM loader). Afterwards the board runs its
// application, not the ROM: the next connection must bring it back into
// download mode, which esprom.Connect's DTR/RTS reset does on real adapters;
// on a pty someone must (the simulator's Board.Reset(true); on a bare board,
// hold BOOT and press EN).

// errAppFailed: the board's application failed on what the board holds (no
// bootable image, no partition table, a credential its firmware cannot
// read): evidence against the board.
var errAppFailed = errors.New("the board's application failed on its own flash")

// espAppVerdict is what a console line settles.
type espAppVerdict int

const (
	appConnected    espAppVerdict = iota + 1
	appBoardFault                 // the board's own flash: errAppFailed
	appRegRefused                 // the platform refused the registration: registry.ErrRefused
	appLoginRefused               // the broker refused the login: ErrLoginRefused
	appUnreachable                // the platform or broker could not be reached: registry.ErrUnreachable
)

// espAppLines are the console lines that settle a boot, each the kit's or
// ESP-IDF's own words (the sources are cited in burner/sim's esp32_*.go,
// which print them): the first one seen decides. None of them holds a
// secret; the lines that do (a registration's answer, a DeviceSecret, a
// token) are never matched, kept or logged.
var espAppLines = []struct {
	text    string
	verdict espAppVerdict
}{
	// Connected: esp-qcloud esp_qcloud_mqtt.c mqtt_event_handler; esp-aliyun
	// linkkit_solo.c user_connected_event_handler; LinkSDK mqtt_basic_demo.c
	// demo_mqtt_event_handler.
	{"esp_qcloud_mqtt: MQTT Connected", appConnected},
	{"user_connected_event_handler.70: Cloud Connected", appConnected},
	{"AIOT_MQTTEVT_CONNECT", appConnected},
	// The broker refused the login: esp-mqtt (mqtt_client.c), iotkit
	// (iotx_mqtt_client.c _mqtt_connect), LinkSDK (aiot_state_api.h
	// STATE_MQTT_CONNACK_RCODE_BAD_USERNAME_PASSWORD -0x0304, _NOT_AUTHORIZED -0x0305).
	// A broker that says it is unavailable is the network's, not the
	// credential's (CONNACK 3: esp-mqtt's "server unavailable", iotkit's
	// MQTT_CONNACK_SERVER_UNAVAILABLE_ERROR -36, LinkSDK's -0x0303).
	{"Connection refused, server unavailable", appUnreachable},
	{"received reject ACK from MQTT server! rc = -36", appUnreachable},
	{"aiot_mqtt_connect failed: -0x0303", appUnreachable},
	{"aiot_dynregmq_send_request failed: -0x0303", appUnreachable},
	{"Connection refused, bad username or password", appLoginRefused},
	{"Connection refused, not authorized", appLoginRefused},
	{"received reject ACK from MQTT server!", appLoginRefused},
	{"aiot_mqtt_connect failed: -0x0304", appLoginRefused},
	{"aiot_mqtt_connect failed: -0x0305", appLoginRefused},
	// The platform refused the registration: LinkSDK's CONNECT of the
	// registration refused (aiot_dynregmq_send_request); iotkit's answer
	// with another code than 200 (dynreg.c, matched in espAppVerdictOf).
	{"aiot_dynregmq_send_request failed: -0x0304", appRegRefused},
	{"aiot_dynregmq_send_request failed: -0x0305", appRegRefused},
	// Nothing reached: esp-mqtt "Error transport connect", iotkit "Http
	// Download Failed" and "wrapper_mqtt_connect failed" (when no refusal came
	// first), LinkSDK STATE_SYS_DEPEND_NWK_EST_FAILED -0x0203 and
	// STATE_DYNREGMQ_AUTH_TIMEOUT -0x0503.
	{"MQTT_CLIENT: Error transport connect", appUnreachable},
	{"Http Download Failed", appUnreachable},
	{"wrapper_mqtt_connect failed", appUnreachable},
	{"aiot_dynregmq_send_request failed: -0x0203", appUnreachable},
	{"aiot_dynregmq_recv failed: -0x0503", appUnreachable},
	{"aiot_mqtt_connect failed: -0x0203", appUnreachable},
	// The board's own: the ROM finds no bootloader; the bootloader no table
	// or no app (bootloader_utility.c); the app's credential unreadable or
	// missing (esp_err.c ESP_ERROR_CHECK, esp-qcloud esp_qcloud_device.c,
	// esp-aliyun app_entry.c and mqtt_api.c, LinkSDK aiot_dynregmq_setopt);
	// the kit's KV store unusable (mqtt_api.c).
	{"invalid header: 0x", appBoardFault},
	{"boot: load partition table error!", appBoardFault},
	{"boot: No bootable app partitions in the partition table", appBoardFault},
	{"ESP_ERROR_CHECK failed:", appBoardFault},
	{"Factory partition information is not burned", appBoardFault},
	{"app_entry: Please first input four config", appBoardFault},
	{"Invalid product key, abort!", appBoardFault},
	{"Invalid device name, abort!", appBoardFault},
	{"Invalid device secret, abort!", appBoardFault},
	{"Product Secret doesn't exist", appBoardFault},
	{"Save Device Secret to KV Failed", appBoardFault},
	{"aiot_dynregmq_setopt AIOT_DYNREGMQOPT_", appBoardFault},
}

// espDynregCode is iotkit's "Dynamic Register Code: %s" (dynreg.c
// _fetch_dynreg_http_resp): 200 registered, anything else refused.
const espDynregCode = "Dynamic Register Code: "

// espAppVerdictOf settles a console line (0 if it settles nothing) and
// says what of it may be shown: the line, or only the matched words where
// the line could carry something else (a secret, the platform's free text).
func espAppVerdictOf(line string) (espAppVerdict, string) {
	if i := strings.Index(line, espDynregCode); i >= 0 {
		code := strings.TrimSpace(line[i+len(espDynregCode):])
		if code == "200" {
			return 0, "" // registered: the login decides
		}
		if strings.Trim(code, "0123456789") != "" {
			code = "?"
		}
		return appRegRefused, espDynregCode + code
	}
	for _, l := range espAppLines {
		if strings.Contains(line, l.text) {
			shown := line
			lower := strings.ToLower(line)
			for _, w := range []string{"secret", "password", "token", "sign", "payload", "clientid"} {
				if strings.Contains(lower, w) {
					shown = l.text
				}
			}
			return l.verdict, shown
		}
	}
	return 0, ""
}

// ansiEscape matches the colour codes of ESP-IDF's and iotkit's logs.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// AppResult is what BootApp found out.
type AppResult struct {
	// Line is the console line that settled it (never one holding a secret).
	Line string
	// DeviceSecret is the secret the platform holds for the device, where
	// it shows one and the mode has one (for the record's fingerprint);
	// "" for a registration-free device, which holds a token instead.
	DeviceSecret string
}

// BootApp resets the board into its application, which runs the product
// credential the board holds (c is the unit's, without secrets), and judges
// it: the console's settling line, then the platform's view of the device
// (cloud must be given: the board shows nothing of what it obtained).
func (b *espBoard) BootApp(ctx context.Context, mode Mode, c registry.Credential, cloud registry.Platform) (AppResult, error) {
	if cloud == nil {
		return AppResult{}, fmt.Errorf("an ESP32 shows nothing of the secret or token it obtained: give --cloud so the platform can tell whether it registered and logged in")
	}
	if err := b.resetIntoApp(ctx); err != nil {
		return AppResult{}, err
	}
	line, v, err := b.watchApp(ctx)
	if err != nil {
		return AppResult{}, err
	}
	res := AppResult{Line: line}
	switch v {
	case appBoardFault:
		return res, fmt.Errorf("the board's application says %q: %w", line, errAppFailed)
	case appRegRefused:
		return res, fmt.Errorf("the board's registration was refused (%q): %w", line, registry.ErrRefused)
	case appLoginRefused:
		return res, fmt.Errorf("the broker refused the board's login (%q): %w", line, ErrLoginRefused)
	case appUnreachable:
		return res, fmt.Errorf("the board could not reach the platform (%q): %w", line, registry.ErrUnreachable)
	}
	d, err := b.onlineOnPlatform(ctx, cloud, c)
	if err != nil {
		return res, err
	}
	if mode != ModeRegistrationFree {
		res.DeviceSecret = d.DeviceSecret
	}
	return res, nil
}

// onlineOnPlatform asks the platform for the device the board says it
// logged in as: it must exist (a registration-free one is created by its
// registration), be enabled, and show online (asked for up to 5 s: the
// platform may take a moment).
func (b *espBoard) onlineOnPlatform(ctx context.Context, cloud registry.Platform, c registry.Credential) (registry.Device, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := cloud.Device(ctx, c.ProductID, c.DeviceName)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return d, fmt.Errorf("the board says it is connected, but the platform has no device %s: %w", c.DeviceName, registry.ErrNotFound)
		case err != nil:
			return d, fmt.Errorf("platform check: %w", err)
		case !d.Enabled:
			return d, fmt.Errorf("device %s is disabled on the platform: %w", c.DeviceName, errDisabled)
		case d.Online:
			return d, nil
		}
		if time.Now().After(deadline) {
			return d, fmt.Errorf("the board says it is connected, but the platform does not show %s online", c.DeviceName)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return d, ctx.Err()
		}
	}
}

// espConsoleBaud is the app's console rate (ESP-IDF's
// CONFIG_ESP_CONSOLE_UART_BAUDRATE default, and the ROM's).
const espConsoleBaud = burner.DefaultBaud

// resetIntoApp boots the board from its flash (see BootApp's comment) and
// leaves the port at the console's rate.
func (b *espBoard) resetIntoApp(ctx context.Context) error {
	if ml, ok := b.port.(burner.ModemLines); ok && ml.SetDTR(false) == nil && ml.SetRTS(true) == nil {
		// esptool HardReset: EN held low 100 ms, then released.
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := ml.SetRTS(false); err == nil {
			return b.consoleRate()
		}
	}
	if b.ldr.Stub() {
		// The stub's reboot is a software reset: back in the ROM loader at
		// its boot rate (esptool: "soft resetting from the stub loader will
		// re-load the ROM bootloader"), which is told again.
		if err := b.flashEndReboot(ctx); err != nil {
			return err
		}
		if err := b.consoleRate(); err != nil {
			return err
		}
		ldr := esprom.New(b.port)
		ldr.Log = b.plan.o.Log
		if err := ldr.Connect(ctx); err != nil {
			return err
		}
		b.ldr = ldr
	}
	if err := b.flashEndReboot(ctx); err != nil {
		return err
	}
	return b.consoleRate()
}

// consoleRate moves the port to the console's rate.
func (b *espBoard) consoleRate() error {
	if bs, ok := b.port.(burner.BaudSetter); ok && b.ldr.Baud() != espConsoleBaud {
		return bs.SetBaud(espConsoleBaud)
	}
	return nil
}

// flashEndReboot sends FLASH_END with its word 0, "reboot" (reference §2.4:
// u32 int(not reboot)), and waits for the loader's answer.
func (b *espBoard) flashEndReboot(ctx context.Context) error {
	if _, err := b.port.Write(esprom.EncodeSLIP(esprom.Request(0x04, make([]byte, 4), 0))); err != nil {
		return fmt.Errorf("FLASH_END to the board on %s: %w", b.port.Name(), err)
	}
	b.port.SetReadTimeout(100 * time.Millisecond)
	deadline := time.Now().Add(3 * time.Second)
	var got []byte
	buf := make([]byte, 512)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n, err := b.port.Read(buf)
		if err != nil {
			return fmt.Errorf("FLASH_END to the board on %s: %w", b.port.Name(), err)
		}
		got = append(got, buf[:n]...)
		frames, _ := esprom.DecodeSLIP(got)
		for _, f := range frames {
			r, err := esprom.ParseResponse(f)
			if err != nil || r.Op != 0x04 {
				continue
			}
			// FLASH_END's answer is its status trailer alone (2 bytes from the
			// stub, 4 from the ROM): its first byte is not 0 on a failure
			// (reference §2.2, esptool check_command).
			if len(r.Data) < 2 || r.Data[0] != 0 {
				return fmt.Errorf("the loader on %s refused FLASH_END (status % x)", b.port.Name(), r.Data)
			}
			return nil
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("no answer to FLASH_END from the board on %s: %w", b.port.Name(), esprom.ErrNoAnswer)
}

// watchApp reads the console line by line until one settles the boot; the
// context bounds it (a board that says nothing conclusive is not judged).
func (b *espBoard) watchApp(ctx context.Context) (string, espAppVerdict, error) {
	var shown string
	var verdict espAppVerdict
	lines, err := b.consoleLines(ctx, func(line string) bool {
		verdict, shown = espAppVerdictOf(line)
		return verdict != 0
	})
	if err != nil {
		return "", 0, fmt.Errorf("%w (%d lines after its reset, none saying whether it registered and logged in)", err, lines)
	}
	if b.plan.o.Log != nil {
		b.plan.o.Log.Debug("esp32 app", "port", b.port.Name(), "line", shown)
	}
	return shown, verdict, nil
}

// consoleLines reads the console line by line (colour codes taken out),
// giving each to each until it says done; the context bounds it. It
// returns how many lines it read.
func (b *espBoard) consoleLines(ctx context.Context, each func(line string) (done bool)) (int, error) {
	b.port.SetReadTimeout(100 * time.Millisecond)
	buf := make([]byte, 1024)
	var pending []byte
	lines := 0
	for {
		n, err := b.port.Read(buf)
		if err != nil {
			return lines, fmt.Errorf("reading the console of the board on %s: %w", b.port.Name(), err)
		}
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				break
			}
			line := strings.TrimSpace(ansiEscape.ReplaceAllString(string(pending[:i]), ""))
			pending = pending[i+1:]
			lines++
			if each(line) {
				return lines, nil
			}
		}
		if len(pending) > 4096 {
			pending = pending[len(pending)-1024:] // no line ends: noise, or another rate
		}
		if ctx.Err() != nil {
			return lines, fmt.Errorf("the board on %s: %w", b.port.Name(), ctx.Err())
		}
	}
}
