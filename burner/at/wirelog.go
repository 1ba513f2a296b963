package at

import (
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// secretParams are the parameters (0-based) of the commands, and of the
// answers that echo them, that carry a secret: the Tencent firmware's
// device and product info (AT command set V3.2.1 §2.1, §2.2:
// TLS mode, product id, device name, device secret; TLS mode, product id,
// product secret, device name) and the IDMAU firmware's AT+IDMAU (product
// key, device name, device secret, product secret), whose query answers
// with the stored values themselves.
var secretParams = map[string][]int{
	"AT+TCDEVINFOSET": {3},
	"AT+TCPRDINFOSET": {2},
	// The gateway's sub-device triples (mode, product id, device name,
	// device secret) and a bind given its secret (gateway.go).
	"AT+TCSUBDEVINFOSET": {3},
	"AT+TCGWBIND":        {3},
	"AT+IDMAU":           {2, 3},
	"+IDMAU":             {2, 3},
}

// Masked is line as the wire log shows it: every secret parameter replaced
// by its fingerprint, so a log can say which secret went out without
// holding it.
func Masked(line string) string {
	i := strings.IndexAny(line, "=:")
	if i < 0 {
		return line
	}
	idx, ok := secretParams[strings.ToUpper(strings.TrimSpace(line[:i]))]
	if !ok {
		return line
	}
	params := splitParams(line[i+1:])
	if cmd := strings.ToUpper(strings.TrimSpace(line[:i])); (cmd == "AT+TCDEVINFOSET" || cmd == "+TCDEVINFOSET") && strings.TrimSpace(params[0]) == "2" {
		return line // TLS mode 2: a certificate's file name, no secret
	}
	for _, n := range idx {
		if n >= len(params) {
			continue
		}
		v := strings.Trim(strings.TrimSpace(params[n]), `"`)
		if v == "" {
			continue
		}
		params[n] = `"[secret ` + registry.Fingerprint(v) + `]"`
	}
	return line[:i+1] + strings.Join(params, ",")
}

// splitParams splits an AT parameter list at the commas outside quotes
// (a backslash escapes the next character inside them).
func splitParams(s string) []string {
	var out []string
	start, quoted, esc := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case esc:
			esc = false
		case c == '\\' && quoted:
			esc = true
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
