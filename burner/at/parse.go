package at

import (
	"strconv"
	"strings"
)

// field is one comma-separated value of an AT answer or command.
type field struct {
	quoted bool
	val    string
}

// splitFields splits s at commas outside double quotes; inside quotes a
// backslash escapes the next byte, as the Tencent firmware's rule for '"',
// ',' and '\' has it. Blanks around a field are dropped (the doc's answers
// put a space after each comma), blanks inside quotes kept. It never fails: a
// broken quote runs to the end.
func splitFields(s string) []field {
	var out []field
	var cur strings.Builder
	var f field
	inQ := false
	end := func() {
		f.val = cur.String()
		if !f.quoted {
			f.val = strings.TrimSpace(f.val)
		}
		out = append(out, f)
		cur.Reset()
		f = field{}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			if !inQ && !f.quoted {
				cur.Reset() // blanks before the opening quote
			}
			inQ = !inQ
			f.quoted = true
		case !inQ && c == ',':
			end()
		case !inQ && f.quoted && (c == ' ' || c == '\t'):
			// blanks after the closing quote
		default:
			cur.WriteByte(c)
		}
	}
	end()
	return out
}

// cutResponse returns what follows "+NAME:" (or "+NAME: ") in line.
func cutResponse(line, name string) (string, bool) {
	rest, ok := strings.CutPrefix(line, name+":")
	if !ok {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// parseDevInfo reads the body of "+TCDEVINFOSET:<tls>,"pid","name",<bcc>[,"region"]".
// Old firmware leaves the region out; values may come quoted or bare.
func parseDevInfo(body string) (DevInfo, bool) {
	fs := splitFields(body)
	if len(fs) < 4 || len(fs) > 5 {
		return DevInfo{}, false
	}
	tls, err1 := strconv.Atoi(fs[0].val)
	if tls == 2 && err1 == nil && len(fs) == 4 && fs[3].quoted && fs[3].val != "" {
		// TLS mode 2 names the certificate where the others give the
		// secret's checksum (command set V3.1.3 §2.2).
		return DevInfo{TLSMode: tls, ProductID: fs[1].val, DeviceName: fs[2].val, CertName: fs[3].val}, true
	}
	sum, err2 := strconv.Atoi(fs[3].val)
	if err1 != nil || err2 != nil || sum < 0 || sum > 255 {
		return DevInfo{}, false
	}
	d := DevInfo{TLSMode: tls, ProductID: fs[1].val, DeviceName: fs[2].val, SecretBCC: sum}
	if len(fs) == 5 {
		d.Region = fs[4].val
	}
	return d, true
}

// parseModule reads AT+TCMODULE's "Module <key>: <value>" lines.
func parseModule(lines []string) Identity {
	var id Identity
	for _, l := range lines {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch {
		case strings.Contains(k, "hw name"):
			id.Module = v
		case strings.Contains(k, "fw version"):
			id.Firmware = v
		case strings.Contains(k, "mac addr"):
			id.MAC = normalizeMAC(v)
		case k == "module imei": // a cellular module's (command set V3.1.3 §2.8)
			if len(v) == 15 && strings.Trim(v, "0123456789") == "" && luhnOK(v) {
				id.IMEI = v
			}
		}
	}
	return id
}

// normalizeMAC returns aa:bb:cc:dd:ee:ff for any common spelling of a MAC
// (colons, dashes, dots or none; any case), or "" for something else.
func normalizeMAC(s string) string {
	var hex []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			hex = append(hex, c)
		case c >= 'A' && c <= 'F':
			hex = append(hex, c+'a'-'A')
		case c == ':' || c == '-' || c == '.' || c == ' ':
		default:
			return ""
		}
	}
	if len(hex) != 12 {
		return ""
	}
	var sb strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.Write(hex[i : i+2])
	}
	return sb.String()
}

// parseIMEI finds the IMEI in AT+CGSN's answer: a bare line of 14–16 digits,
// or "+CGSN: <n>" (quoted or not) as some modules print it.
func parseIMEI(lines []string) string {
	for _, l := range lines {
		if rest, ok := cutResponse(l, "+CGSN"); ok {
			l = rest
		}
		l = strings.Trim(strings.TrimSpace(l), `"`)
		if len(l) < 14 || len(l) > 16 {
			continue
		}
		if strings.Trim(l, "0123456789") == "" {
			return l
		}
	}
	return ""
}
