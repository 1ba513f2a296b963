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

// The answer framing and the commands below are what every AT firmware the
// simulator plays shares (QCloud_AT and the Alibaba IoT AT firmware both sit
// on Espressif's AT core): one copy, so the kinds cannot drift apart.
const (
	atOK    = "\r\nOK\r\n"
	atError = "\r\nERROR\r\n"
)

// atReply sends lines, each ended by CRLF.
func atReply(send func([]byte), lines ...string) {
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString(l)
		sb.WriteString("\r\n")
	}
	send([]byte(sb.String()))
}

// basic answers AT and ATE0/ATE1 (echo off/on until the next power cycle)
// and reports whether line was one of them.
func (a *atLine) basic(line string, send func([]byte)) bool {
	switch line {
	case "AT":
	case "ATE0", "ATE1":
		a.echo = line == "ATE1"
	default:
		return false
	}
	send([]byte(atOK))
	return true
}

// splitCommand splits "AT+X=…"/"AT+X?" into the name and what follows it.
func splitCommand(line string) (name, rest string) {
	if i := strings.IndexAny(line, "=?"); i >= 0 {
		return line[:i], line[i:]
	}
	return line, ""
}
