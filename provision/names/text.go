package names

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Encodings as Source.Encoding names them.
const (
	UTF8        = "UTF-8"
	UTF8BOM     = "UTF-8 with BOM"
	UTF16LE     = "UTF-16LE"
	UTF16BE     = "UTF-16BE"
	GBK         = "GBK"
	encodingFix = "save it from Excel as \"CSV UTF-8\" (or .xlsx) and try again"
)

// decode turns a names file's bytes into text, telling which encoding it was
// in. Factories' spreadsheets export UTF-8 (with or without the BOM Excel
// puts first), "Unicode Text" (UTF-16LE with a BOM, tab-separated) or, on a
// Chinese Windows, the ANSI code page 936: GBK. Names themselves are ASCII on
// both platforms; the encoding matters for the header and the other columns.
//
// A byte-order mark decides; without one, text that is valid UTF-8 is
// UTF-8, and anything else is read as GBK (GB18030, its superset, as the
// decoder of golang.org/x/text/encoding/simplifiedchinese) if every byte
// decodes. NUL bytes without a BOM (UTF-16 without a BOM, a binary file) and
// UTF-32 are refused rather than guessed at.
func decode(data []byte) (string, string, error) {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(data, []byte{0, 0, 0xFE, 0xFF}):
		return "", "", fmt.Errorf("%w: the file is UTF-32: %s", ErrEncoding, encodingFix)
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		rest := data[3:]
		if !utf8.Valid(rest) {
			return "", "", fmt.Errorf("%w: the file starts with a UTF-8 byte-order mark but is not UTF-8 after it: %s", ErrEncoding, encodingFix)
		}
		return string(rest), UTF8BOM, nil
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		s, err := decodeUTF16(data[2:], false)
		return s, UTF16LE, err
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		s, err := decodeUTF16(data[2:], true)
		return s, UTF16BE, err
	case bytes.IndexByte(data, 0) >= 0:
		return "", "", fmt.Errorf("%w: the file has NUL bytes: it is binary, or UTF-16 without a byte-order mark: %s", ErrEncoding, encodingFix)
	case utf8.Valid(data):
		return string(data), UTF8, nil
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
	if err != nil || bytes.ContainsRune(out, utf8.RuneError) {
		return "", "", fmt.Errorf("%w: the file is neither UTF-8 nor GBK: %s", ErrEncoding, encodingFix)
	}
	return string(out), GBK, nil
}

func decodeUTF16(b []byte, bigEndian bool) (string, error) {
	enc := UTF16LE
	if bigEndian {
		enc = UTF16BE
	}
	if len(b)%2 != 0 {
		return "", fmt.Errorf("%w: the file says %s but has an odd number of bytes (cut short?): %s", ErrEncoding, enc, encodingFix)
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		if bigEndian {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		} else {
			u[i] = uint16(b[2*i+1])<<8 | uint16(b[2*i])
		}
	}
	for i := 0; i < len(u); i++ {
		switch {
		case utf16.IsSurrogate(rune(u[i])) && u[i] < 0xDC00 && i+1 < len(u) && u[i+1] >= 0xDC00 && u[i+1] <= 0xDFFF:
			i++ // a pair
		case utf16.IsSurrogate(rune(u[i])):
			return "", fmt.Errorf("%w: the file says %s but holds a broken character (an unpaired surrogate): %s", ErrEncoding, enc, encodingFix)
		}
	}
	return string(utf16.Decode(u)), nil
}

// record is one row of a names file: its cells and where it starts.
type record struct {
	line   int
	fields []string
}

// separators are the ones sniffed, in order of preference on a tie.
var separators = []rune{',', ';', '\t'}

// sniffSample is how many records the separator is judged on.
const sniffSample = 50

// sniff picks the separator: the one that splits every sampled record
// (comments and blank lines aside) into the same number of fields, more than
// one; of several, the one giving most fields, then the first in separators.
// 0 means one column: no separator splits the rows consistently.
func sniff(text string) rune {
	best, bestN := rune(0), 1
	for _, sep := range separators {
		if !strings.ContainsRune(text, sep) {
			continue
		}
		recs, err := parseCSV(text, sep, sniffSample)
		if err != nil {
			continue
		}
		n := -1
		for _, r := range recs {
			if blank(r) {
				continue
			}
			if n == -1 {
				n = len(r.fields)
			} else if n != len(r.fields) {
				n = -2
				break
			}
		}
		if n > bestN {
			best, bestN = sep, n
		}
	}
	return best
}

// blank reports whether every cell of r is empty, white space or nothing
// but separators: Excel exports an empty row of a sheet of several columns
// as ",,", which in a file read as one column is one cell of commas, and
// still no name (a workbook's empty row has no cells at all).
func blank(r record) bool {
	for _, f := range r.fields {
		if strings.Trim(f, " \t,;") != "" {
			return false
		}
	}
	return true
}

// parseCSV splits text into records as RFC 4180 and Excel have it: fields
// separated by sep (0: the whole line is one field), a field that starts
// with '"' quoted (a doubled "" is one quote; separators and line breaks
// inside are data), records ended by \n, \r\n or a lone \r. Unlike
// encoding/csv it keeps blank lines (as records of one empty field) so
// that a hole in the names column is reported, not skipped, and it skips
// lines whose first character other than white space is '#' (comments). A quote opened and
// never closed, or text after a closing quote, is an error naming the line.
// limit > 0 stops after that many records.
func parseCSV(text string, sep rune, limit int) ([]record, error) {
	var (
		out    []record
		line   = 1
		i      = 0
		fields []string
		field  strings.Builder
	)
	atLineEnd := func(j int) (int, bool) { // length of the line break at j
		switch {
		case j >= len(text):
			return 0, false
		case text[j] == '\n':
			return 1, true
		case text[j] == '\r' && j+1 < len(text) && text[j+1] == '\n':
			return 2, true
		case text[j] == '\r':
			return 1, true
		}
		return 0, false
	}
	for i < len(text) && (limit <= 0 || len(out) < limit) {
		start := line
		// A comment: the rest of the line, whatever it holds. (A tab
		// before the '#' is a separator when tabs separate.)
		pad := " \t"
		if sep == '\t' {
			pad = " "
		}
		if j := i + len(text[i:]) - len(strings.TrimLeft(text[i:], pad)); j < len(text) && text[j] == '#' {
			for i < len(text) {
				if n, ok := atLineEnd(i); ok {
					i += n
					break
				}
				i++
			}
			line++
			continue
		}
		fields = fields[:0:0]
		for {
			field.Reset()
			if i < len(text) && text[i] == '"' {
				quoteLine := line
				i++
				for {
					if i >= len(text) {
						return nil, fmt.Errorf("%w: line %d: a quote opened here is never closed", ErrSyntax, quoteLine)
					}
					if text[i] == '"' {
						if i+1 < len(text) && text[i+1] == '"' {
							field.WriteByte('"')
							i += 2
							continue
						}
						i++
						break
					}
					if n, ok := atLineEnd(i); ok {
						field.WriteByte('\n')
						i += n
						line++
						continue
					}
					field.WriteByte(text[i])
					i++
				}
				// After the closing quote: a separator, the line's end or the file's.
				if _, ok := atLineEnd(i); !ok && i < len(text) && !(sep != 0 && strings.HasPrefix(text[i:], string(sep))) {
					return nil, fmt.Errorf("%w: line %d: text after the closing quote of a field: quote the whole field, doubling the quotes inside it", ErrSyntax, line)
				}
			} else {
				for i < len(text) {
					if _, ok := atLineEnd(i); ok {
						break
					}
					if sep != 0 && strings.HasPrefix(text[i:], string(sep)) {
						break
					}
					field.WriteByte(text[i])
					i++
				}
			}
			fields = append(fields, field.String())
			if sep != 0 && strings.HasPrefix(text[i:], string(sep)) {
				i += len(string(sep))
				continue
			}
			break
		}
		if n, ok := atLineEnd(i); ok {
			i += n
			line++
		}
		out = append(out, record{line: start, fields: fields})
	}
	return out, nil
}
