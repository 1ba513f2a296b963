package at

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// RunScript sends an image of the tencent-at or aliyun-at format: AT lines
// separated by LF or CRLF, blank lines and '#' comments skipped. Each line
// must answer OK; a set command "AT+XXX=…" must then report "+XXX:OK" (with
// or without a space after the colon), as the Tencent firmware does once it
// has written flash, unless its firmware is known to end at OK (okOnly).
// The first failure stops the script.
//
// A line AT+TCCERTADD="file",N is followed in the image by the file's N
// bytes (then, optionally, a line end): they go to the module after its ">"
// prompt (AddCert). Before the first of them, every file the module holds
// is deleted (clearCerts), so the board ends up with this certificate only.
func (d *Driver) RunScript(ctx context.Context, script []byte) error {
	items, err := scriptItems(script)
	if err != nil {
		return err
	}
	cleared := false
	for _, it := range items {
		if it.file != "" {
			if !cleared {
				if err := d.clearCerts(ctx); err != nil {
					return err
				}
				cleared = true
			}
			if err := d.AddCert(ctx, it.file, it.data); err != nil {
				return err
			}
			continue
		}
		line := it.line
		name := commandName(line)
		r, err := d.c.command(ctx, line, d.timeout())
		if err != nil {
			return d.fail(name, err)
		}
		if !r.ok() {
			return d.refused(name, r, line)
		}
		urc, isSet := setURC(line)
		if !isSet || okOnly[urc] {
			continue
		}
		res, err := d.c.result(ctx, r, urc, d.timeout())
		if err != nil {
			return d.fail(name, err)
		}
		if res != "OK" {
			return fmt.Errorf("board on %s failed %s: %s: %w", d.port.Name(), name, boardWords([]string{res}, line), ErrRefused)
		}
	}
	return nil
}

// okOnly lists the set commands whose firmware answers OK and nothing after
// it, so waiting for a "+XXX:OK" would only time out: Alibaba's AT+IDMAU
// (idm_au_handler replies OK once HAL_Set* ran) and AT+LINKKEYCONFIG (the
// Living SDK handler replies OK after aos_kv_set); reference/aliyun.md §5.
var okOnly = map[string]bool{"+IDMAU": true, "+LINKKEYCONFIG": true}

// scriptItem is one step of an image: a command line, or a file for
// AT+TCCERTADD and its bytes.
type scriptItem struct {
	line string
	file string
	data []byte
}

// ErrBadImage marks an image RunScript cannot take apart (a file's bytes
// cut short).
var ErrBadImage = errors.New("the image is damaged")

// scriptItems splits an image into its steps.
func scriptItems(script []byte) ([]scriptItem, error) {
	var out []scriptItem
	for len(script) > 0 {
		raw := script
		if i := bytes.IndexByte(script, '\n'); i >= 0 {
			raw, script = script[:i], script[i+1:]
		} else {
			script = nil
		}
		l := strings.TrimSpace(string(raw))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		file, size, ok := certAddLine(l)
		if !ok {
			out = append(out, scriptItem{line: l})
			continue
		}
		if size > len(script) {
			return nil, fmt.Errorf("AT+TCCERTADD of %s wants %d bytes and the image holds %d after it: %w", file, size, len(script), ErrBadImage)
		}
		out = append(out, scriptItem{file: file, data: script[:size]})
		script = script[size:]
	}
	return out, nil
}

// certAddLine reads AT+TCCERTADD="file",N (the set form; not =? or ?).
func certAddLine(l string) (file string, size int, ok bool) {
	rest, found := strings.CutPrefix(l, "AT+TCCERTADD=")
	if !found || rest == "?" {
		return "", 0, false
	}
	fs := splitFields(rest)
	file, n, ok := fileAndSize(fs)
	if !ok || !fs[0].quoted || n < 0 {
		return "", 0, false
	}
	return file, n, true
}

// fileAndSize reads the two fields "file",N that AT+TCCERTADD's set form
// and the lines of its listing (AT+TCCERTADD?) both carry.
func fileAndSize(fs []field) (file string, size int, ok bool) {
	if len(fs) != 2 || fs[0].val == "" {
		return "", 0, false
	}
	n, err := strconv.Atoi(fs[1].val)
	if err != nil {
		return "", 0, false
	}
	return fs[0].val, n, true
}

// setURC returns "+XXX" for a set command "AT+XXX=…" (not the test form "=?").
func setURC(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "AT+")
	if !ok {
		return "", false
	}
	i := strings.IndexByte(rest, '=')
	if i <= 0 || strings.HasPrefix(rest[i:], "=?") {
		return "", false
	}
	return "+" + rest[:i], true
}
