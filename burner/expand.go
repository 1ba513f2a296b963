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
//   - "auto": every USB serial port the enumerator sees;
//   - "auto:VID:PID" (hex, either may be "*"): the same, filtered, e.g. "auto:10c4:ea60";
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
	vid, pid := "*", "*"
	if rest, ok := strings.CutPrefix(item, "auto:"); ok {
		v, p, ok := strings.Cut(rest, ":")
		if !ok || v == "" || p == "" {
			return nil, fmt.Errorf("--ports %q: want auto:VID:PID, e.g. auto:10c4:ea60", item)
		}
		vid, pid = strings.ToLower(v), strings.ToLower(p)
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
		if (vid == "*" || strings.EqualFold(p.VID, vid)) && (pid == "*" || strings.EqualFold(p.PID, pid)) {
			out = append(out, p.Name)
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
