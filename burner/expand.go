package burner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// listPorts is List, replaceable in tests: no CI machine has a USB hub of boards.
var listPorts = List

// Expand turns a --ports value into the paths to drive, sorted and without
// duplicates. The value is a comma list of:
//
//   - "auto": every USB serial port the enumerator sees, each named by its
//     USB position (/dev/serial/by-path/…) where udev has such a link, so a
//     hub slot keeps its name when its board re-enumerates;
//   - "auto:VID:PID[:SERIAL]" (hex, any may be "*"): the same, filtered,
//     e.g. "auto:10c4:ea60" or "auto:303a:1001:*";
//   - a glob ("DIR/tty*", "/dev/ttyUSB*"): whatever character devices match now;
//     no match is fine, because boards come and go while a batch runs;
//   - a path: must exist and be a character device, since the technician named it.
//
// Glob matches that are dangling links (an unplugged simulated board) or plain
// files are skipped.
func Expand(spec string) ([]string, error) {
	seen := map[string]bool{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		var paths []string
		var err error
		switch {
		case item == "":
			continue
		case item == "auto" || strings.HasPrefix(item, "auto:"):
			paths, err = expandAuto(item)
		case strings.ContainsAny(item, "*?["):
			paths, err = expandGlob(item)
		default:
			err = checkPath(item)
			paths = []string{item}
		}
		if err != nil {
			return nil, err
		}
		for _, p := range paths {
			seen[p] = true
		}
	}
	if len(seen) == 0 && strings.TrimSpace(strings.ReplaceAll(spec, ",", "")) == "" {
		return nil, errors.New(`no ports given: use --ports auto, a path, or a glob such as "/dev/ttyUSB*"`)
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

func expandAuto(item string) ([]string, error) {
	vid, pid, serial := "*", "*", "*"
	if rest, ok := strings.CutPrefix(item, "auto:"); ok {
		f := strings.Split(rest, ":")
		if len(f) < 2 || len(f) > 3 || f[0] == "" || f[1] == "" || (len(f) == 3 && f[2] == "") {
			return nil, fmt.Errorf("--ports %q: want auto:VID:PID or auto:VID:PID:SERIAL, e.g. auto:10c4:ea60", item)
		}
		vid, pid = strings.ToLower(f[0]), strings.ToLower(f[1])
		if len(f) == 3 {
			serial = f[2]
		}
	}
	ports, err := listPorts()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range ports {
		if !p.USB {
			continue
		}
		if (vid == "*" || strings.EqualFold(p.VID, vid)) && (pid == "*" || strings.EqualFold(p.PID, pid)) && (serial == "*" || p.SerialNumber == serial) {
			name := p.Name
			if p.ByPath != "" {
				name = p.ByPath
			}
			out = append(out, name)
		}
	}
	return out, nil
}

func expandGlob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("--ports %q: %w", pattern, err)
	}
	var out []string
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode()&fs.ModeCharDevice != 0 {
			out = append(out, m)
		}
	}
	return out, nil
}

func checkPath(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return openError(path, err)
	}
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return fmt.Errorf("%s is %w: give the path of a serial device", path, ErrNotSerial)
	}
	return nil
}
