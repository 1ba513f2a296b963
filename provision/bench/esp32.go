package bench

import (
	"bytes"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/esprom"
	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates/nvs"
)

// fullBoardTable is the layout of the full-board figures: ESP-IDF's
// single-app table with the kits' fctry partition at the end.
const fullBoardTable = `nvs,      data, nvs,     0x9000,   0x6000
phy_init, data, phy,     0xf000,   0x1000
factory,  app,  factory, 0x10000,  1M
fctry,    data, nvs,     0x3f0000, 0x6000
`

// fullBoard is what a factory writes to a real ESP32: a bootloader, the
// partition table, a 1 MB application and the credential partition. The
// code is real machine code (this program's own, which deflates to about
// half, as firmware does); the credential partition is a real NVS image.
type fullBoard struct {
	common []flashmap.Region
	cred   flashmap.Region
	format nvs.Format
	credID registry.Credential
}

func newFullBoard() (*fullBoard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	code, err := os.ReadFile(exe)
	if err != nil {
		return nil, err
	}
	const appSize, bootSize = 1 << 20, 0x6000
	if len(code) < 0x10000+appSize+bootSize {
		return nil, fmt.Errorf("bench: %s is too small to lend 1 MB of machine code", exe)
	}
	t, err := flashmap.ReadTableCSV(strings.NewReader(fullBoardTable), "bench table", 0)
	if err != nil {
		return nil, err
	}
	table, err := t.Binary()
	if err != nil {
		return nil, err
	}
	fb := &fullBoard{format: nvs.Format{Size: 0x6000, Version: 2, Keys: nvs.TencentKeys},
		credID: registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "bench0000", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}}
	fb.common = []flashmap.Region{
		flashmap.FromFile("bootloader.bin", 0x1000, code[0x10000+appSize:0x10000+appSize+bootSize]),
		flashmap.FromFile("partition-table.bin", 0x8000, table),
		flashmap.FromFile("app.bin", 0x10000, code[0x10000:0x10000+appSize]),
	}
	img, err := fb.format.Render(fb.credID)
	if err != nil {
		return nil, err
	}
	fb.cred = flashmap.FromFile("fctry.bin", 0x3f0000, img)
	return fb, nil
}

func (fb *fullBoard) all() []flashmap.Region {
	return append(append([]flashmap.Region(nil), fb.common...), fb.cred)
}

// deflated is the bytes each region takes on the wire, deflated as
// esptool -z and iotburn send them (zlib level 9).
func (fb *fullBoard) deflated() int {
	n := 0
	for _, r := range fb.all() {
		var z bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
		zw.Write(r.Data)
		zw.Close()
		n += z.Len()
	}
	return n
}

// floor is the physical floor of a full board at baud: its deflated bytes'
// time on the wire (ten bits a byte, 8N1) plus the flash chip's own time to
// erase the regions and program them, from the simulated part's datasheet.
func (fb *fullBoard) floor(baud int) time.Duration {
	wire := time.Duration(fb.deflated()) * 10 * time.Second / time.Duration(baud)
	var flash time.Duration
	for _, r := range fb.all() {
		flash += sim.ESP32FlashFloor(r.Offset, uint32(len(r.Data)))
	}
	return wire + flash
}

// espFull is the full-board table: seconds for iotburn, and for esptool in
// ROM and in stub mode when o.Esptool is given, each beside the physical
// floor, at 115200, 460800 and 921600; then 16 full boards on 16 ports
// against one. Each run takes fresh boards: a ROM stays at a changed rate
// until it is reset.
func espFull(ctx context.Context, o Options, add func(Figure)) error {
	fb, err := newFullBoard()
	if err != nil {
		return err
	}
	tool, err := esptoolCommand(o.Esptool)
	if err != nil {
		return err
	}
	files := map[string]string{}
	for _, r := range fb.all() {
		p := filepath.Join(o.Dir, "esp-images", r.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, r.Data, 0o600); err != nil {
			return err
		}
		files[r.Name] = p
	}
	// iotburn with Espressif's stub, where an esptool tree lends it.
	var stub *esprom.Stub
	if o.Esptool != "" {
		dir := o.Esptool
		if st, err := os.Stat(dir); err == nil && !st.IsDir() {
			dir = filepath.Dir(dir)
		}
		if s, err := esprom.LoadStub(filepath.Join(dir, "esptool", "targets", "stub_flasher", "1", "esp32.json")); err == nil {
			stub = s
		}
	}
	for _, baud := range []int{115200, 460800, 921600} {
		floor := fb.floor(baud)
		iot, err := iotburnFullBoard(ctx, filepath.Join(o.Dir, fmt.Sprintf("esp-iot-%d", baud)), fb, baud, nil)
		if err != nil {
			return err
		}
		ref := fmt.Sprintf("floor %.1f s (%d bytes deflated + the flash's least erase/program time): %.2f× the floor", floor.Seconds(), fb.deflated(), iot.Seconds()/floor.Seconds())
		best := iot
		value := fmt.Sprintf("%.1f s ROM", iot.Seconds())
		if stub != nil {
			st, err := iotburnFullBoard(ctx, filepath.Join(o.Dir, fmt.Sprintf("esp-iot-stub-%d", baud)), fb, baud, stub)
			if err != nil {
				return err
			}
			ref += fmt.Sprintf("; with --stub %.1f s (%.2f× the floor)", st.Seconds(), st.Seconds()/floor.Seconds())
			value += fmt.Sprintf(", %.1f s stub", st.Seconds())
			iot = min(iot, st)
		}
		if tool != nil {
			for _, stub := range []bool{false, true} {
				et, err := esptoolFullBoard(ctx, filepath.Join(o.Dir, fmt.Sprintf("esp-tool-%d-%v", baud, stub)), tool, fb, files, baud, stub)
				if err != nil {
					return err
				}
				mode := "ROM"
				if stub {
					mode = "stub"
				}
				ref += fmt.Sprintf("; esptool v4.8.1 %s mode %.1f s (%.2f× the floor)", mode, et.Seconds(), et.Seconds()/floor.Seconds())
				best = min(best, et)
			}
			ref += fmt.Sprintf("; iotburn is %.2f× esptool's faster mode", iot.Seconds()/best.Seconds())
		} else {
			ref += "; esptool not given (--esptool PATH/esptool.py)"
		}
		f := Figure{Name: fmt.Sprintf("ESP32 full board at %d", baud), Value: value, Reference: ref}
		if baud == 921600 {
			f.Target, f.Met = "≤ 1.10× the floor", met(iot.Seconds() <= 1.10*floor.Seconds())
		}
		add(f)
	}
	one, err := espLine(ctx, filepath.Join(o.Dir, "esp-line-1"), fb, 1, 921600)
	if err != nil {
		return err
	}
	many, err := espLine(ctx, filepath.Join(o.Dir, "esp-line-16"), fb, 16, 921600)
	if err != nil {
		return err
	}
	ratio := many.Seconds() / one.Seconds()
	add(Figure{Name: "ESP32 line, 16 full boards at 921600", Value: fmt.Sprintf("%.1f s", many.Seconds()),
		Reference: fmt.Sprintf("1 board %.1f s: %.2f× (the shared images deflated once for the line)", one.Seconds(), ratio),
		Target:    "≤ 1.15× one board", Met: met(ratio <= 1.15)})
	return nil
}

// iotburnFullBoard burns one fresh simulated board the way `iotburn batch`
// does (connect at 115200, switch to baud, flash size, the map checked,
// every region deflated and MD5-verified) and returns the time from opening
// the port to the last MD5.
func iotburnFullBoard(ctx context.Context, dir string, fb *fullBoard, baud int, stub *esprom.Stub) (time.Duration, error) {
	farm, err := sim.Start(sim.Options{Dir: dir, Kind: "esp32", Count: 1})
	if err != nil {
		return 0, err
	}
	defer farm.Close()
	open, err := provision.OpenESPBoard(provision.ESPOptions{Baud: baud, Format: fb.format, Compress: true, Common: fb.common, Stub: stub})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	b, err := open(farm.Boards()[0].Path())
	if err != nil {
		return 0, err
	}
	defer b.Close()
	if _, err := b.Identify(ctx); err != nil {
		return 0, err
	}
	if err := b.Write(ctx, fb.cred.Data); err != nil { // Write prepares the board first
		return 0, err
	}
	return time.Since(start), nil
}

// espLine runs the line on n fresh boards with full firmware and returns
// its wall time.
func espLine(ctx context.Context, dir string, fb *fullBoard, n, baud int) (time.Duration, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	l, err := ledger.Open(filepath.Join(dir, "l.db"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	names := make([]string, n)
	creds := make([]registry.Credential, n)
	for i := range names {
		names[i] = fmt.Sprintf("bench%04d", i)
		creds[i] = fb.credID
		creds[i].DeviceName = names[i]
	}
	req, err := l.Journal("tencent", "ABCDEFGHIJ", names)
	if err != nil {
		return 0, err
	}
	if _, err := l.Complete(req.ID, creds); err != nil {
		return 0, err
	}
	farm, err := sim.Start(sim.Options{Dir: filepath.Join(dir, "boards"), Kind: "esp32", Count: n})
	if err != nil {
		return 0, err
	}
	defer farm.Close()
	start := time.Now()
	open, err := provision.OpenESPBoard(provision.ESPOptions{Baud: baud, Format: fb.format, Compress: true, Common: fb.common})
	if err != nil {
		return 0, err
	}
	res, err := provision.RunLine(ctx, provision.LineOptions{
		Ledger: l, Platform: "tencent", Product: "ABCDEFGHIJ", Format: fb.format, Station: "bench", Once: true,
		Ports: func() ([]string, error) { return burner.Expand(filepath.Join(dir, "boards", "tty*")) },
		Open:  open,
	})
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	if res.Burned != n {
		return 0, fmt.Errorf("bench esp32 line: %d of %d boards burned", res.Burned, n)
	}
	return elapsed, nil
}

// esptoolCommand is how to run esptool: a source tree (a folder holding
// esptool.py) or esptool.py itself, run with a Python that has pyserial and
// intelhex, or an esptool executable. nil when path is "".
func esptoolCommand(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "esptool.py")
	}
	if !strings.HasSuffix(path, ".py") {
		return []string{path}, nil
	}
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import serial, intelhex").Run() == nil {
			return []string{py, path}, nil
		}
	}
	return nil, errors.New("bench: no python3 with pyserial and intelhex for esptool.py (Debian: apt-get install python3-serial python3-intelhex)")
}

// esptoolFullBoard runs esptool's write_flash -z of the full board on a
// fresh simulated board and returns the process's wall time.
func esptoolFullBoard(ctx context.Context, dir string, tool []string, fb *fullBoard, files map[string]string, baud int, stub bool) (time.Duration, error) {
	farm, err := sim.Start(sim.Options{Dir: dir, Kind: "esp32", Count: 1})
	if err != nil {
		return 0, err
	}
	defer farm.Close()
	args := append(tool[1:], "--chip", "esp32", "--port", farm.Boards()[0].Path(), "--baud", fmt.Sprint(baud), "--before", "no_reset", "--after", "no_reset")
	if !stub {
		args = append(args, "--no-stub")
	}
	args = append(args, "write_flash", "-z")
	for _, r := range fb.all() {
		args = append(args, fmt.Sprintf("0x%x", r.Offset), files[r.Name])
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, tool[0], args...).CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("bench: esptool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return elapsed, nil
}
