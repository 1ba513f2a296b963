package nvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxCSV bounds what ParseCSV reads: a partition is at most a few MiB, so a
// bigger CSV is a mistake, and the bound keeps a bad input from eating memory.
const maxCSV = 64 << 20

// ParseCSV reads the generator's CSV format:
//
//	key,type,encoding,value
//	qcloud-key,namespace,,
//	device_name,data,string,dev0001
//	cert,file,string,certs/dev0001.pem
//
// It reads it as the generator does (Python's csv module, excel dialect):
// lines whose first character is '#' are dropped before parsing, the first
// remaining line is the header and must name the columns key, type, encoding
// and value (in any order), fields may be quoted with '"' (and then hold
// commas, "" for a quote, and newlines), fields are not trimmed.
//
// type is namespace, data or file; a file row's value is a path, relative to
// baseDir unless absolute, whose content is decoded with the row's encoding.
// Encodings: u8 i8 u16 i16 u32 i32 u64 i64 (decimal, Python int() syntax),
// string, hex2bin, base64, binary, blob_fill(N;0xHH) (the value's UTF-8 bytes
// padded to N with 0xHH) and blob_sz_fill(N;0xHH) (the same, preceded by the
// value's length as a little-endian u32).
//
// Errors name the line the row starts on and say how to fix it.
func ParseCSV(r io.Reader, baseDir string) ([]Entry, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxCSV+1))
	if err != nil {
		return nil, fmt.Errorf("nvs: reading CSV: %w", err)
	}
	if len(raw) > maxCSV {
		return nil, fmt.Errorf("nvs: CSV is larger than %d MiB", maxCSV>>20)
	}
	raw = bytes.TrimPrefix(raw, []byte("\xEF\xBB\xBF")) // a BOM from spreadsheet exports
	if !utf8.Valid(raw) {
		line := 1 + bytes.Count(raw[:validPrefix(raw)], []byte("\n"))
		return nil, lineErr(line, "the CSV is not valid UTF-8: save it as UTF-8")
	}
	records := readRecords(string(raw))
	if len(records) == 0 {
		return nil, errors.New("nvs: the CSV is empty: it needs the header line key,type,encoding,value")
	}
	hdr := records[0]
	col := map[string]int{}
	for i, name := range hdr.fields {
		col[name] = i // a repeated name: the last one wins, as in csv.DictReader
	}
	for _, name := range []string{"key", "type", "encoding", "value"} {
		if _, ok := col[name]; !ok {
			return nil, lineErr(hdr.line, "the header must name the columns key,type,encoding,value; %q is missing", name)
		}
	}
	p := csvParser{baseDir: baseDir}
	entries := make([]Entry, 0, len(records)-1)
	for _, rec := range records[1:] {
		if len(rec.fields) == 0 { // blank line
			continue
		}
		get := func(name string) (string, bool) {
			i := col[name]
			if i >= len(rec.fields) {
				return "", false
			}
			return rec.fields[i], true
		}
		en, err := p.row(rec.line, get)
		if err != nil {
			return nil, err
		}
		entries = append(entries, en)
	}
	return entries, nil
}

// validPrefix returns the length of the longest valid UTF-8 prefix of b.
func validPrefix(b []byte) int {
	n := 0
	for n < len(b) {
		r, size := utf8.DecodeRune(b[n:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		n += size
	}
	return n
}

type csvParser struct {
	baseDir   string
	namespace string
}

var primitiveKinds = map[string]Kind{"u8": U8, "i8": I8, "u16": U16, "i16": I16, "u32": U32, "i32": I32, "u64": U64, "i64": I64}

// fillEncoding is the generator's re.match for blob_fill/blob_sz_fill: a
// prefix match, so trailing text after ')' is ignored there too.
var fillEncoding = regexp.MustCompile(`^(blob_fill|blob_sz_fill)\(([0-9]+);(0x[0-9a-fA-F]{2})\)`)

const encodingList = "u8, i8, u16, i16, u32, i32, u64, i64, string, hex2bin, base64, binary, blob_fill(N;0xHH) or blob_sz_fill(N;0xHH)"

func (p *csvParser) row(line int, get func(string) (string, bool)) (Entry, error) {
	key, ok := get("key")
	if !ok {
		return Entry{}, lineErr(line, "the row has no key column: every row needs key,type,encoding,value")
	}
	typ, _ := get("type")
	enc, _ := get("encoding")
	value, hasValue := get("value")
	en := Entry{Key: key, Line: line}
	switch typ {
	case "namespace":
		en.Kind, en.Namespace = Namespace, key
		if err := checkKey(&en); err != nil {
			return Entry{}, err
		}
		p.namespace = key
		return en, nil
	case "data", "file":
	default:
		return Entry{}, lineErr(line, "unknown type %q for key %q: use namespace, data or file", typ, key)
	}
	en.Namespace = p.namespace
	en.Kind = String // for checkKey's wording; set properly below
	if err := checkKey(&en); err != nil {
		return Entry{}, err
	}
	if p.namespace == "" {
		return Entry{}, lineErr(line, "key %q comes before any namespace row: add a namespace row (name,namespace,,) above it", key)
	}
	if !hasValue && !strings.HasPrefix(enc, "blob_") {
		// (blob_fill without a value is all padding, as in the generator.)
		return Entry{}, lineErr(line, "key %q has no value column: the row needs four fields, key,type,encoding,value", key)
	}

	// The value as the generator holds it: text for data rows, the file's
	// bytes for file rows.
	text, isFile := value, typ == "file"
	if isFile {
		if strings.HasPrefix(enc, "blob_fill") || strings.HasPrefix(enc, "blob_sz_fill") {
			return Entry{}, lineErr(line, "key %q: %s works with data rows only (Espressif's generator fails on file rows)", key, enc)
		}
		b, err := p.readFile(line, key, value)
		if err != nil {
			return Entry{}, err
		}
		text = string(b)
	}

	if m := fillEncoding.FindStringSubmatch(enc); m != nil {
		n, err := strconv.Atoi(m[2])
		if err != nil || n > maxCSV {
			return Entry{}, lineErr(line, "key %q: %s: length too large", key, enc)
		}
		pad, _ := strconv.ParseUint(m[3][2:], 16, 8)
		if len(value) > n {
			return Entry{}, lineErr(line, "key %q: value is %d bytes, longer than the %d of %s: shorten it or raise N", key, len(value), n, enc)
		}
		var data []byte
		if m[1] == "blob_sz_fill" {
			data = binary.LittleEndian.AppendUint32(data, uint32(len(value)))
		}
		data = append(data, value...)
		data = append(data, bytes.Repeat([]byte{byte(pad)}, n-len(value))...)
		en.Kind, en.Data = Blob, data
		return en, nil
	} else if strings.HasPrefix(enc, "blob_fill") || strings.HasPrefix(enc, "blob_sz_fill") {
		return Entry{}, lineErr(line, "key %q: encoding %q: write it as blob_fill(N;0xHH) or blob_sz_fill(N;0xHH), e.g. blob_fill(32;0xff)", key, enc)
	}

	switch enc {
	case "string":
		if !utf8.ValidString(text) {
			return Entry{}, lineErr(line, "key %q: file %s is not valid UTF-8 text: use the binary encoding for binary data", key, value)
		}
		en.Kind, en.Str = String, text
		return en, nil
	case "hex2bin":
		h := strings.TrimFunc(text, pySpace)
		if isFile {
			h = string(bytes.Trim([]byte(text), " \t\n\r\v\f")) // bytes.strip(): ASCII whitespace only
		}
		if len(h)%2 != 0 {
			return Entry{}, lineErr(line, "key %q: hex2bin value has an odd number of digits (%d): hex needs two digits a byte", key, len(h))
		}
		data := make([]byte, len(h)/2)
		if _, err := hexDecode(data, h); err != nil {
			return Entry{}, lineErr(line, "key %q: hex2bin value: %v", key, err)
		}
		en.Kind, en.Data = Blob, data
		return en, nil
	case "base64":
		if !isFile && !isASCII(text) {
			return Entry{}, lineErr(line, "key %q: base64 value has non-ASCII characters", key)
		}
		data, err := pyBase64(text)
		if err != nil {
			return Entry{}, lineErr(line, "key %q: base64 value: %v", key, err)
		}
		en.Kind, en.Data = Blob, data
		return en, nil
	}
	lower := strings.ToLower(enc)
	switch {
	case lower == "binary":
		if !isFile && !isASCII(text) {
			return Entry{}, lineErr(line, "key %q: binary encoding with non-ASCII text (Espressif's generator miscounts its bytes): use string, hex2bin or base64", key)
		}
		en.Kind, en.Data = Blob, []byte(text)
		return en, nil
	case lower == "string" || lower == "hex2bin" || lower == "base64":
		return Entry{}, lineErr(line, "key %q: write the encoding %q in lower case (%q): Espressif's generator does not convert it otherwise", key, enc, lower)
	}
	kind, ok := primitiveKinds[lower]
	if !ok {
		return Entry{}, lineErr(line, "unknown encoding %q for key %q: use %s", enc, key, encodingList)
	}
	en.Kind = kind
	neg, mag, ok := pyInt(text, false)
	if !ok {
		return Entry{}, lineErr(line, "key %q: %q is not a decimal integer (write 255, not 0xff)", key, text)
	}
	_, width := typeCode(kind)
	if kind.signed() {
		limit := uint64(1) << (8*width - 1)
		if (neg && mag > limit) || (!neg && mag > limit-1) {
			return Entry{}, lineErr(line, "key %q: %s is out of range for %v (%d..%d)", key, strings.TrimFunc(text, pySpace), kind, -int64(limit-1)-1, int64(limit-1))
		}
		en.Int = int64(mag) // two's complement wrap gives -2^63 for mag 2^63
		if neg {
			en.Int = -en.Int
		}
		return en, nil
	}
	hi := uint64(math.MaxUint64)
	if width < 8 {
		hi = 1<<(8*width) - 1
	}
	if (neg && mag != 0) || mag > hi {
		return Entry{}, lineErr(line, "key %q: %s is out of range for %v (0..%d)", key, strings.TrimFunc(text, pySpace), kind, hi)
	}
	en.Uint = mag
	return en, nil
}

func (p *csvParser) readFile(line int, key, path string) ([]byte, error) {
	if path == "" {
		return nil, lineErr(line, "key %q: file row without a path in the value column", key)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.baseDir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, lineErr(line, "key %q: %v", key, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCSV+1))
	if err != nil {
		return nil, lineErr(line, "key %q: %v", key, err)
	}
	if len(b) > maxCSV {
		return nil, lineErr(line, "key %q: file %s is larger than %d MiB", key, path, maxCSV>>20)
	}
	return b, nil
}

// record is one CSV record and the line it starts on (1-based, counting the
// dropped comment lines, so it is the line an editor shows).
type record struct {
	line   int
	fields []string
}

// readRecords is Python's csv.reader (excel dialect, strict off) fed with the
// generator's filter(lambda row: row[0] != '#', file): the input is split
// into lines with universal newlines, '#' lines are dropped, the rest is
// parsed by the same state machine as CPython 3.11's _csv.c.
func readRecords(s string) []record {
	const (
		startRecord = iota
		startField
		inField
		inQuoted
		quoteInQuoted
		eatCRNL
	)
	var (
		out    []record
		fields []string
		field  strings.Builder
		state  = startRecord
		start  int
	)
	save := func() {
		fields = append(fields, field.String())
		field.Reset()
	}
	lineNo := 0
	for len(s) > 0 {
		// Next physical line, its terminator normalised to "\n".
		lineNo++
		var ln string
		if i := strings.IndexAny(s, "\r\n"); i >= 0 {
			ln = s[:i] + "\n"
			if s[i] == '\r' && i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
			s = s[i+1:]
		} else {
			ln, s = s, ""
		}
		if ln[0] == '#' {
			continue
		}
		if state == startRecord {
			start = lineNo
		}
		// Characters then the end-of-line pseudo character (eol).
		for i := 0; i <= len(ln); i++ {
			eol := i == len(ln)
			var c byte
			if !eol {
				c = ln[i]
			}
			nl := !eol && c == '\n'
			switch state {
			case startRecord:
				if eol {
					break
				}
				if nl {
					state = eatCRNL
					break
				}
				state = startField
				fallthrough
			case startField:
				switch {
				case nl || eol:
					save()
					state = eatCRNL
					if eol {
						state = startRecord
					}
				case c == '"':
					state = inQuoted
				case c == ',':
					save()
				default:
					field.WriteByte(c)
					state = inField
				}
			case inField:
				switch {
				case nl || eol:
					save()
					state = eatCRNL
					if eol {
						state = startRecord
					}
				case c == ',':
					save()
					state = startField
				default:
					field.WriteByte(c)
				}
			case inQuoted:
				switch {
				case eol:
				case c == '"':
					state = quoteInQuoted
				default:
					field.WriteByte(c)
				}
			case quoteInQuoted:
				switch {
				case !eol && c == '"':
					field.WriteByte('"')
					state = inQuoted
				case !eol && c == ',':
					save()
					state = startField
				case nl || eol:
					save()
					state = eatCRNL
					if eol {
						state = startRecord
					}
				default:
					field.WriteByte(c)
					state = inField
				}
			case eatCRNL:
				if eol {
					state = startRecord
				}
			}
		}
		if state == startRecord {
			out = append(out, record{line: start, fields: fields})
			fields = nil
		}
	}
	// End of input inside a record: Python saves the field when it has text
	// or is an open quoted field, and returns the record.
	if state != startRecord {
		if field.Len() > 0 || state == inQuoted {
			save()
		}
		if len(fields) > 0 {
			out = append(out, record{line: start, fields: fields})
		}
	}
	return out
}

// pySpace is Python's str.isspace: Unicode White_Space plus the ASCII
// separators 0x1C..0x1F.
func pySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1C && r <= 0x1F) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// pyInt parses an integer the way Python's int(s) (base0 false) or
// int(s, 0) (base0 true) does, limited to ASCII digits: surrounding
// whitespace, a sign, '_' between digits; with base0 the prefixes 0x 0o 0b
// and no leading zeros on decimals. It returns the sign and magnitude;
// ok is false for bad syntax or a magnitude beyond 64 bits.
func pyInt(s string, base0 bool) (neg bool, mag uint64, ok bool) {
	s = strings.TrimFunc(s, pySpace)
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := uint64(10)
	if base0 && len(s) >= 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			base, s = 16, s[2:]
		case 'o', 'O':
			base, s = 8, s[2:]
		case 'b', 'B':
			base, s = 2, s[2:]
		}
		if base != 10 && strings.HasPrefix(s, "_") { // "0x_1f" is allowed
			s = s[1:]
		}
	}
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return false, 0, false
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' {
			continue
		}
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return false, 0, false
		}
		if d >= base {
			return false, 0, false
		}
		if mag > (math.MaxUint64-d)/base {
			return false, 0, false
		}
		mag = mag*base + d
		digits++
	}
	// int("010", 0) is an error in Python (no octal without 0o), "00" is 0.
	if base0 && base == 10 && s[0] == '0' && mag != 0 {
		return false, 0, false
	}
	return neg, mag, digits > 0
}

// hexDecode is binascii.a2b_hex: pairs of hex digits, either case.
func hexDecode(dst []byte, s string) (int, error) {
	for i := 0; i+1 < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return 0, fmt.Errorf("non-hexadecimal digit near position %d", i+1)
		}
		dst[i/2] = hi<<4 | lo
	}
	return len(s) / 2, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// pyBase64 is binascii.a2b_base64 in its default (non-strict) mode, which
// the generator uses: characters outside the alphabet are skipped, decoding
// stops at the padding that completes a quad, a quad left incomplete is an
// error. encoding/base64 is stricter, so it would reject CSVs the generator
// accepts (line breaks, missing text after the padding…).
func pyBase64(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)*3/4)
	var left byte
	quad, pads := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' {
			pads++
			if quad >= 2 && quad+pads >= 4 {
				return out, nil
			}
			continue
		}
		v := b64val(c)
		if v < 0 {
			continue
		}
		pads = 0
		d := byte(v)
		switch quad {
		case 0:
			quad, left = 1, d
		case 1:
			quad = 2
			out = append(out, left<<2|d>>4)
			left = d & 0x0f
		case 2:
			quad = 3
			out = append(out, left<<4|d>>2)
			left = d & 0x03
		case 3:
			quad = 0
			out = append(out, left<<6|d)
			left = 0
		}
	}
	switch quad {
	case 0:
		return out, nil
	case 1:
		return nil, fmt.Errorf("invalid base64: the number of data characters (%d) cannot be 1 more than a multiple of 4", len(out)/3*4+1)
	}
	return nil, errors.New("incorrect base64 padding")
}

func b64val(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+':
		return 62
	case c == '/':
		return 63
	}
	return -1
}
