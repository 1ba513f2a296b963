package flashmap

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Spec is one image to write, before its file is read.
type Spec struct {
	Offset uint32
	Path   string
	From   string // how it was given, for messages: `--flash 0x1000=bootloader.bin`
}

// ParseSpecs reads --flash values in every form esptool users write them:
//
//	--flash 0x1000=bootloader.bin     iotburn's own
//	--flash 0x1000 bootloader.bin     esptool's pairs: the file is the next argument
//	--flash @build/flash_args         ESP-IDF's flash_args, paths relative to its folder
//
// args are the command's positional arguments, taken in order by the
// values that have no "=" (cobra hands them over separately, in order).
// Every positional argument must be used.
func ParseSpecs(values, args []string) ([]Spec, error) {
	var out []Spec
	next := 0
	for _, v := range values {
		switch {
		case strings.HasPrefix(v, "@"):
			specs, err := ReadFlashArgs(v[1:])
			if err != nil {
				return nil, err
			}
			out = append(out, specs...)
		case strings.Contains(v, "="):
			off, path, _ := strings.Cut(v, "=")
			s, err := spec(off, path, "--flash "+v)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		default:
			if next >= len(args) {
				return nil, fmt.Errorf("--flash %s: which file? write --flash %s=FILE (or esptool's --flash %s FILE)", v, v, v)
			}
			s, err := spec(v, args[next], "--flash "+v+" "+args[next])
			if err != nil {
				return nil, err
			}
			next++
			out = append(out, s)
		}
	}
	if next < len(args) {
		return nil, fmt.Errorf("unexpected argument %q: images are given as --flash OFFSET=FILE (or --flash OFFSET FILE)", args[next])
	}
	return out, nil
}

func spec(off, path, from string) (Spec, error) {
	o, err := ParseNumber(off)
	if err != nil {
		return Spec{}, fmt.Errorf("%s: the offset %v", from, err)
	}
	if strings.TrimSpace(path) == "" {
		return Spec{}, fmt.Errorf("%s: no file named: write OFFSET=FILE, e.g. 0x1000=bootloader.bin", from)
	}
	return Spec{Offset: o, Path: path, From: from}, nil
}

// ReadFlashArgs reads an ESP-IDF build/flash_args file (what `idf.py build`
// writes for `esptool.py write_flash @flash_args`): option lines such as
// "--flash_mode dio --flash_freq 40m --flash_size 4MB" (iotburn leaves the
// image headers as they are, as esptool's "keep" does, so they are skipped),
// then "OFFSET PATH" pairs. Paths are relative to the file's folder, where
// idf.py runs esptool.
func ReadFlashArgs(path string) ([]Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--flash @%s: %w", path, err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	var out []Spec
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		words := strings.Fields(sc.Text())
		for i := 0; i < len(words); i++ {
			w := words[i]
			if strings.HasPrefix(w, "-") {
				name, _, inline := strings.Cut(w, "=")
				takesValue, known := flashArgsOptions[name]
				if !known {
					return nil, fmt.Errorf("%s line %d: esptool option %s is not one iotburn knows how to honour: remove it, or burn with esptool", path, line, w)
				}
				if takesValue && !inline {
					i++ // its value
				}
				continue
			}
			if i+1 >= len(words) {
				return nil, fmt.Errorf("%s line %d: %q has no file after it: want OFFSET PATH", path, line, w)
			}
			p := words[i+1]
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			s, err := spec(w, p, fmt.Sprintf("%s line %d", path, line))
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			i++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--flash @%s names no images (want lines of OFFSET PATH)", path)
	}
	return out, nil
}

// flashArgsOptions are the write_flash options ESP-IDF puts in flash_args,
// and whether each takes a value. The flash mode, frequency and size go into
// a bootloader's header only when esptool is told to change them; iotburn
// writes images as they are (esptool's "keep"), which is what idf.py built.
var flashArgsOptions = map[string]bool{
	"--flash_mode": true, "--flash-mode": true, "-fm": true,
	"--flash_freq": true, "--flash-freq": true, "-ff": true,
	"--flash_size": true, "--flash-size": true, "-fs": true,
	"-z": false, "--compress": false, "-u": false, "--no-compress": false,
}

// Load reads each spec's file into a region.
func Load(specs []Spec) ([]Region, error) {
	out := make([]Region, 0, len(specs))
	for _, s := range specs {
		data, err := os.ReadFile(s.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.From, err)
		}
		out = append(out, FromFile(s.Path, s.Offset, data))
	}
	return out, nil
}
