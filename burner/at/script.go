package at

import (
	"context"
	"fmt"
	"strings"
)

// RunScript sends an image of the tencent-at or aliyun-at format: AT lines
// separated by LF or CRLF, blank lines and '#' comments skipped. Each line
// must answer OK; a set command "AT+XXX=…" must then report "+XXX:OK" (with
// or without a space after the colon), as the Tencent firmware does once it
// has written flash, unless its firmware is known to end at OK (okOnly).
// The first failure stops the script.
func (d *Driver) RunScript(ctx context.Context, script []byte) error {
	for _, line := range scriptLines(script) {
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
		res, found := "", false
		for _, l := range r.lines { // a fast board may report before its OK arrives
			if res, found = urcResult(l, urc); found {
				break
			}
		}
		if !found {
			d.c.mark()
			if res, err = d.c.waitURC(ctx, urc, d.timeout()); err != nil {
				return d.fail(name, err)
			}
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

// scriptLines splits an image into the command lines to send.
func scriptLines(script []byte) []string {
	var out []string
	for _, l := range strings.Split(string(script), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return out
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
