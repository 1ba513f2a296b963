package sim

import "strings"

// atLine is the part of every AT firmware below the commands: it echoes what
// it receives (until ATE0), assembles lines ended by CR, LF or CRLF, and turns
// an over-long line into ERROR. Aliyun's AT modules speak the same framing.
type atLine struct {
	echo bool // ESP-AT boots with echo on
	buf  []byte
	over bool // the current line passed maxLine; answer ERROR at its end
}

// maxATLine is the firmware's command buffer: 256 bytes including CRLF. The
// buffer holds the CR; the LF that ends the line is not stored.
const maxATLine = 256 - 1

// feed consumes received bytes. Echo goes out byte for byte in arrival order
// and is flushed before each complete line is dispatched, so an ATE0 stops
// the echo of whatever follows it, as on the real board.
func (a *atLine) feed(p []byte, send func([]byte), dispatch func(line string)) {
	var echo []byte
	flush := func() {
		if len(echo) > 0 {
			send(echo)
			echo = nil
		}
	}
	for _, c := range p {
		if a.echo {
			echo = append(echo, c)
		}
		if c != '\n' {
			if len(a.buf) >= maxATLine {
				a.over = true
			} else {
				a.buf = append(a.buf, c)
			}
			continue
		}
		line, over := strings.TrimSuffix(string(a.buf), "\r"), a.over
		a.buf, a.over = a.buf[:0], false
		flush()
		switch {
		case over:
			send([]byte("\r\nERROR\r\n"))
		case line != "":
			dispatch(line)
		}
	}
	flush()
}
