package sim

import (
	"errors"
	"strconv"
	"strings"
)

// atArg is one parameter of an AT set command.
type atArg struct {
	quoted bool
	val    string
}

var errArgs = errors.New("malformed parameters")

// parseATArgs splits the text after '=' into parameters: numbers bare,
// strings in double quotes, where the firmware's rule is that '"', ',' and '\'
// inside a string are escaped with '\' (any "\x" stands for x).
func parseATArgs(s string) ([]atArg, error) {
	var args []atArg
	i := 0
	for {
		var a atArg
		if i < len(s) && s[i] == '"' {
			a.quoted = true
			var sb strings.Builder
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					sb.WriteByte(s[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				sb.WriteByte(c)
				i++
			}
			if !closed {
				return nil, errArgs
			}
			a.val = sb.String()
		} else {
			j := strings.IndexByte(s[i:], ',')
			if j < 0 {
				j = len(s) - i
			}
			a.val = s[i : i+j]
			if strings.ContainsAny(a.val, `"\`) {
				return nil, errArgs
			}
			i += j
		}
		args = append(args, a)
		if i == len(s) {
			return args, nil
		}
		if s[i] != ',' {
			return nil, errArgs // text after a closing quote
		}
		i++
	}
}

// str returns parameter i as a quoted string of 1..maxLen bytes.
func str(args []atArg, i, maxLen int) (string, bool) {
	if i >= len(args) || !args[i].quoted || args[i].val == "" || len(args[i].val) > maxLen {
		return "", false
	}
	return args[i].val, true
}

// num returns parameter i as a bare integer in lo..hi.
func num(args []atArg, i, lo, hi int) (int, bool) {
	if i >= len(args) || args[i].quoted {
		return 0, false
	}
	n, err := strconv.Atoi(args[i].val)
	if err != nil || n < lo || n > hi {
		return 0, false
	}
	return n, true
}

// quoteAT writes s as the firmware prints a string: in double quotes, with
// the characters that would break parsing escaped.
func quoteAT(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == ',' || c == '\\' {
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
	sb.WriteByte('"')
	return sb.String()
}

// bcc is the firmware's secret checksum: the XOR of all bytes, printed in decimal.
func bcc(s string) int {
	var x byte
	for i := 0; i < len(s); i++ {
		x ^= s[i]
	}
	return int(x)
}
