package burner_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/sim"
)

func startFarm(t *testing.T, n int) *sim.Farm {
	t.Helper()
	f, err := sim.Start(sim.Options{Dir: t.TempDir(), Count: n, Baud: sim.Unpaced})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestOpenErrors(t *testing.T) {
	f := startFarm(t, 1)
	board := f.Boards()[0].Path()
	plain := filepath.Join(t.TempDir(), "notatty")
	os.WriteFile(plain, nil, 0o600)

	first, err := burner.Open(board, 115200)
	if err != nil {
		t.Fatal(err)
	}
	if first.Name() != board {
		t.Errorf("Name() = %q, want %q", first.Name(), board)
	}
	for _, tc := range []struct {
		name, path string
		is         error
		says       []string
	}{
		{"missing", "/dev/ttyUSB9-does-not-exist", burner.ErrNotExist, []string{"port /dev/ttyUSB9-does-not-exist does not exist", "iotburn ports"}},
		{"busy", board, burner.ErrBusy, []string{"port " + board + " is busy", "another program has it open"}},
		{"not a tty", plain, burner.ErrNotSerial, []string{"not a serial port"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := burner.Open(tc.path, 115200)
			if err == nil {
				p.Close()
			}
			if !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want %v", err, tc.is)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
	// Closing releases the port for the next process.
	first.Close()
	again, err := burner.Open(board, 115200)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	again.Close()
}

func TestExpand(t *testing.T) {
	f := startFarm(t, 3)
	dir := f.Dir()
	b := f.Boards()
	os.WriteFile(filepath.Join(dir, "ttyNOTES"), nil, 0o600)             // a plain file: skipped by globs
	os.Symlink("/dev/pts/does-not-exist", filepath.Join(dir, "ttyGONE")) // a dangling link: a board unplugged
	for _, tc := range []struct {
		spec string
		want []string
		err  string
	}{
		{spec: dir + "/tty*", want: []string{b[0].Path(), b[1].Path(), b[2].Path()}},
		{spec: b[2].Path() + "," + b[0].Path() + " , " + dir + "/ttySIM0[02]", want: []string{b[0].Path(), b[2].Path()}},
		{spec: dir + "/ttyACM*", want: []string{}},
		{spec: dir + "/ttySIM99", err: "does not exist"},
		{spec: dir + "/ttyNOTES", err: "not a serial port"},
		{spec: dir + "/tty[", err: "syntax error"},
		{spec: " , ", err: "no ports given"},
		{spec: "auto:10c4", err: "auto:VID:PID"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := burner.Expand(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// List runs the real enumerator; on a CI machine it usually finds nothing,
// which is fine. Ptys must never be among its results.
func TestList(t *testing.T) {
	f := startFarm(t, 1)
	ports, err := burner.List()
	if err != nil {
		t.Skipf("no enumerator here: %v", err)
	}
	target, _ := os.Readlink(f.Boards()[0].Path())
	for _, p := range ports {
		if p.Name == target {
			t.Errorf("a pty in the enumerator: %+v", p)
		}
	}
}
