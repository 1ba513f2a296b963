// Package names reads the device names for `iotburn create` from files as
// factories export them: a plain list, CSV with or without a header (',' ';'
// or tab, sniffed), UTF-8 with or without BOM, UTF-16 with BOM, GBK, or an
// .xlsx workbook. It picks the names column by its header (or the column
// asked for), and refuses, with the line and the fix, anything that would
// create a wrong device: a header it cannot identify, a number Excel wrote in
// scientific notation, an empty cell, a duplicate, a name the platform
// refuses. Nothing is returned unless the whole file is good.
package names

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// The kinds of problem, for errors.Is. Every error returned wraps one (a
// *ProblemsError wraps each kind it holds).
var (
	ErrFormat     = errors.New("not a names file")
	ErrEncoding   = errors.New("unreadable text encoding")
	ErrSyntax     = errors.New("malformed CSV")
	ErrHeader     = errors.New("cannot tell which column holds the device names")
	ErrColumn     = errors.New("no such column")
	ErrNoNames    = errors.New("no device names in the file")
	ErrEmpty      = errors.New("empty name")
	ErrDuplicate  = errors.New("duplicate name")
	ErrInvalid    = errors.New("name the platform refuses")
	ErrScientific = errors.New("number in scientific notation")
)

// MaxFileSize bounds what is read into memory: a million 48-character names
// in a three-column CSV is well under it.
const MaxFileSize = 256 << 20

// HeaderMode says whether the first row is a header.
type HeaderMode int

const (
	// HeaderAuto: a header if it names a known names column, or if it looks
	// unlike the rows under it (see Read).
	HeaderAuto HeaderMode = iota
	HeaderYes
	HeaderNo
)

// ParseHeaderMode reads auto, yes or no.
func ParseHeaderMode(s string) (HeaderMode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return HeaderAuto, nil
	case "yes", "true", "1":
		return HeaderYes, nil
	case "no", "false", "0":
		return HeaderNo, nil
	}
	return 0, fmt.Errorf("--header %q: use auto, yes or no", s)
}

// Options say how to read a file.
type Options struct {
	// Column is the names column: "" to find it by its header, a header's
	// text (any case), or a column number counted from 1. A header's text
	// implies a header.
	Column string
	Header HeaderMode
	// Rule is the platform's name rule (PlatformRule); nil checks nothing
	// beyond empty cells, duplicates and scientific notation.
	Rule func(string) error
}

// Name is one device name and the line (CSV) or row (xlsx) it is on.
type Name struct {
	Value string
	Line  int
}

// Source tells what was read, for the operator to confirm before anything
// is created.
type Source struct {
	Kind       string // "csv" (any text list) or "xlsx"
	Encoding   string // CSV only: UTF8, UTF8BOM, UTF16LE, UTF16BE, GBK
	Separator  rune   // CSV only; 0: one column
	Sheet      string // xlsx only: the sheet read (the first)
	Sheets     int    // xlsx only: how many the workbook has
	HeaderLine int    // the header's line or row; 0: no header
	Column     int    // the names column, from 1
	ColumnName string // its header; "" without a header
	Columns    int    // how many columns the file has
}

// Unit is what a position in the file is called: "line" in a CSV, "row" in
// a workbook (as Excel numbers them).
func (s Source) Unit() string {
	if s.Kind == "xlsx" {
		return "row"
	}
	return "line"
}

func (s Source) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "column %d", s.Column)
	if s.ColumnName != "" {
		fmt.Fprintf(&b, " %q", s.ColumnName)
	}
	if s.Kind == "xlsx" {
		fmt.Fprintf(&b, " of sheet %q (xlsx", s.Sheet)
		if s.Sheets > 1 {
			fmt.Fprintf(&b, ", the first of %d sheets", s.Sheets)
		}
	} else {
		fmt.Fprintf(&b, " (CSV, %s", s.Encoding)
		if s.Separator != 0 {
			fmt.Fprintf(&b, ", %s-separated", sepName(s.Separator))
		}
	}
	if s.HeaderLine > 0 {
		fmt.Fprintf(&b, ", header on %s %d", s.Unit(), s.HeaderLine)
	} else {
		b.WriteString(", no header")
	}
	b.WriteString(")")
	return b.String()
}

func sepName(r rune) string {
	if r == '\t' {
		return "tab"
	}
	return fmt.Sprintf("'%c'", r)
}

// List is what a names file holds.
type List struct {
	Names  []Name
	Source Source
}

// Values is the names alone, in file order.
func (l List) Values() []string {
	out := make([]string, len(l.Names))
	for i, n := range l.Names {
		out[i] = n.Value
	}
	return out
}

// ReadFile reads the names file at path (an .xlsx workbook is recognised by
// its content, whatever its name).
func ReadFile(path string, o Options) (List, error) {
	f, err := os.Open(path)
	if err != nil {
		return List{}, fmt.Errorf("names file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return List{}, fmt.Errorf("names file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return List{}, fmt.Errorf("names file %s: %w: larger than %d MB: split it", path, ErrFormat, MaxFileSize>>20)
	}
	l, err := Read(data, o)
	if err != nil {
		return List{}, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// xlsMagic starts a Compound File: an Excel 97-2003 .xls, or an encrypted .xlsx.
var xlsMagic = []byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}

// Read reads a names file's content. How the names column is chosen:
//
//   - Options.Column as a header's text or number, if given;
//   - else a header cell naming a device-name column (DeviceName, Device
//     Name, Name, 设备名称), or failing that the one header cell naming an
//     identifier (SN, Serial, Serial Number, IMEI, MAC, 序列号, …); two
//     candidates of the same rank are refused as ambiguous;
//   - else, in a file of one column, that column.
//
// With HeaderAuto the first row is a header if it holds one of those words,
// or if in some column its cell is not a valid name while the cells under
// it are, or looks unlike them (the rows under it share one shape, letters
// and digits and punctuation in the same order, and it does not). A header
// that names no known column, or a file of several columns without one, is
// refused listing the columns found, unless Options.Column says which.
func Read(data []byte, o Options) (List, error) {
	var (
		recs []record
		src  Source
		err  error
	)
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		recs, src, err = readXLSX(data)
	case bytes.HasPrefix(data, xlsMagic):
		err = fmt.Errorf("%w: an Excel 97-2003 .xls workbook (or an encrypted .xlsx): save it as .xlsx (not encrypted) or as CSV UTF-8", ErrFormat)
	default:
		var text string
		text, src.Encoding, err = decode(data)
		if err == nil {
			src.Kind = "csv"
			src.Separator = sniff(text)
			recs, err = parseCSV(text, src.Separator, 0)
		}
	}
	if err != nil {
		return List{}, err
	}
	return pick(recs, src, o)
}

// pick chooses the header and the names column and checks every name.
func pick(recs []record, src Source, o Options) (List, error) {
	unit := src.Unit()
	// Rows that are wholly empty at the end are how spreadsheets and editors
	// end files, and they create nothing.
	for len(recs) > 0 && blank(recs[len(recs)-1]) {
		recs = recs[:len(recs)-1]
	}
	// And so are empty rows above the first.
	for len(recs) > 0 && blank(recs[0]) {
		recs = recs[1:]
	}
	if len(recs) == 0 {
		return List{}, fmt.Errorf("%w: put one name a line, or a column headed DeviceName, SN or IMEI", ErrNoNames)
	}
	for _, r := range recs {
		src.Columns = max(src.Columns, len(r.fields))
	}
	first := recs[0]

	colNum, colName := 0, ""
	if o.Column != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(o.Column)); err == nil {
			if n < 1 {
				return List{}, fmt.Errorf("%w: --column %d: columns count from 1", ErrColumn, n)
			}
			colNum = n
		} else {
			colName = strings.TrimSpace(o.Column)
			if o.Header == HeaderNo {
				return List{}, fmt.Errorf("%w: --column %q names a header, and --header no says there is none: give the column's number", ErrColumn, colName)
			}
		}
	}

	header := false
	switch {
	case colName != "", o.Header == HeaderYes:
		header = true
	case o.Header == HeaderAuto:
		header = looksLikeHeader(recs, o.Rule)
	}
	if colNum > src.Columns {
		return List{}, &ColumnError{Asked: o.Column, Unit: unit, Header: first, HasHeader: header,
			Reason: fmt.Sprintf("the file has %d column(s)", src.Columns)}
	}

	if header {
		src.HeaderLine = first.line
		if colName != "" {
			colNum = 0
			for i, f := range first.fields {
				if strings.EqualFold(strings.TrimSpace(f), colName) || normal(f) == normal(colName) && normal(f) != "" {
					if colNum != 0 {
						return List{}, &ColumnError{Asked: o.Column, Unit: unit, Header: first, HasHeader: true,
							Reason: fmt.Sprintf("two columns (%d and %d) are headed so: give the column's number", colNum, i+1)}
					}
					colNum = i + 1
				}
			}
			if colNum == 0 {
				return List{}, &ColumnError{Asked: o.Column, Unit: unit, Header: first, HasHeader: true,
					Reason: fmt.Sprintf("no column on %s %d is headed so", unit, first.line)}
			}
		}
		if colNum == 0 && o.Header == HeaderYes && src.Columns == 1 {
			colNum = 1 // told there is a header: whatever it says, there is one column under it
		}
		if colNum == 0 {
			n, err := identify(first, unit)
			if err != nil {
				return List{}, err
			}
			colNum = n
		}
		src.ColumnName = strings.TrimSpace(cell(first, colNum-1))
		recs = recs[1:]
	} else if colNum == 0 {
		if src.Columns > 1 {
			return List{}, &HeaderError{Unit: unit, Line: first.line, Cells: first.fields, NoHeader: true}
		}
		colNum = 1
	}
	src.Column = colNum

	list := List{Source: src}
	seen := map[string]int{}
	var problems []Problem
	add := func(r record, v string, kind error, detail string) {
		problems = append(problems, Problem{Unit: unit, Line: r.line, Value: v, Kind: kind, Detail: detail})
	}
	for _, r := range recs {
		v := strings.TrimSpace(cell(r, colNum-1))
		switch {
		case v == "" && blank(r):
			add(r, v, ErrEmpty, fmt.Sprintf("empty name: the %s is blank: remove it or fill it in", unit))
			continue
		case v == "":
			add(r, v, ErrEmpty, "empty name: fill it in or remove the "+unit)
			continue
		case scientific(v):
			add(r, v, ErrScientific, fmt.Sprintf("%q is a number in scientific notation (Excel shortened a long number such as an IMEI): format the column as text in Excel, retype or paste the numbers, and export again", v))
			continue
		case seen[v] != 0:
			add(r, v, ErrDuplicate, fmt.Sprintf("%q is a duplicate of %s %d: every device needs its own name", v, unit, seen[v]))
			continue
		}
		if o.Rule != nil {
			if err := o.Rule(v); err != nil {
				detail := err.Error()
				if !strings.Contains(detail, strconv.Quote(v)) {
					detail = strconv.Quote(v) + ": " + detail
				}
				add(r, v, ErrInvalid, detail)
				continue
			}
		}
		seen[v] = r.line
		list.Names = append(list.Names, Name{Value: v, Line: r.line})
	}
	if len(problems) > 0 {
		return List{}, &ProblemsError{Source: src, Problems: problems}
	}
	if len(list.Names) == 0 {
		return List{}, fmt.Errorf("%w: only a header (%s %d)", ErrNoNames, unit, src.HeaderLine)
	}
	return list, nil
}

func cell(r record, i int) string {
	if i < 0 || i >= len(r.fields) {
		return ""
	}
	return r.fields[i]
}

// Header words, compared after normal(). Device-name columns outrank
// identifier columns; two of the same rank are ambiguous.
var (
	nameHeaders = []string{"devicename", "name", "设备名称", "设备名"}
	idHeaders   = []string{"sn", "serial", "serialnumber", "serialno", "imei", "mac", "macaddress", "macaddr",
		"序列号", "设备序列号", "mac地址"}
)

// normal folds a header for comparison: lower case, without spaces, '_',
// '-', '.', '#' and the full-width space.
func normal(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r), r == '_', r == '-', r == '.', r == '#':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

func rank(cell string) int {
	n := normal(cell)
	for _, h := range nameHeaders {
		if n == h {
			return 2
		}
	}
	for _, h := range idHeaders {
		if n == h {
			return 1
		}
	}
	return 0
}

// identify finds the names column in a header row.
func identify(h record, unit string) (int, error) {
	for _, want := range []int{2, 1} {
		var found []int
		for i, f := range h.fields {
			if rank(f) == want {
				found = append(found, i+1)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		default:
			return 0, &HeaderError{Unit: unit, Line: h.line, Cells: h.fields, Ambiguous: found}
		}
	}
	return 0, &HeaderError{Unit: unit, Line: h.line, Cells: h.fields}
}

// headerSample is how many rows under the first are compared with it.
const headerSample = 100

// looksLikeHeader is HeaderAuto's judgement of the first row (see Read).
func looksLikeHeader(recs []record, rule func(string) error) bool {
	first := recs[0]
	for _, f := range first.fields {
		if rank(f) > 0 {
			return true
		}
	}
	rows := recs[1:min(len(recs), 1+headerSample)]
	if len(rows) == 0 {
		return false // a file of one name
	}
	for c, f := range first.fields {
		h := strings.TrimSpace(f)
		if h == "" || scientific(h) {
			continue
		}
		// A cell that breaks the platform's rule above cells that keep it.
		if rule != nil && rule(h) != nil {
			good := 0
			for _, r := range rows {
				v := strings.TrimSpace(cell(r, c))
				if v == "" {
					continue
				}
				if rule(v) != nil {
					good = -1
					break
				}
				good++
			}
			if good > 0 {
				return true
			}
		}
		// A cell shaped unlike every cell under it, when those agree.
		if len(rows) >= 2 {
			s := shape(strings.TrimSpace(cell(rows[0], c)))
			same := true
			for _, r := range rows[1:] {
				if shape(strings.TrimSpace(cell(r, c))) != s {
					same = false
					break
				}
			}
			if same && shape(h) != s {
				return true
			}
		}
	}
	return false
}

// shape is a cell's pattern: each run of letters 'a', each run of digits
// '9', anything else itself. "SN-00012" and "SN-00013" share "a-9";
// "Serial Number" is "a a".
func shape(s string) string {
	var b strings.Builder
	last := rune(-1)
	for _, r := range s {
		c := r
		switch {
		case unicode.IsLetter(r):
			c = 'a'
		case unicode.IsDigit(r):
			c = '9'
		}
		if (c == 'a' || c == '9') && c == last {
			continue
		}
		b.WriteRune(c)
		last = c
	}
	return b.String()
}

// scientific matches how Excel writes a long number it shortened, with a
// decimal point or comma and a signed exponent: 8.68139E+14, 1E+15,
// 8,68139E+14. The sign keeps hexadecimal serials such as 12E4 out.
func scientific(s string) bool {
	m := strings.IndexAny(s, "eE")
	if m <= 0 || m+2 >= len(s) || (s[m+1] != '+' && s[m+1] != '-') {
		return false
	}
	mant, exp := s[:m], s[m+2:]
	if i := strings.IndexAny(mant, ".,"); i >= 0 {
		if i == 0 || i == len(mant)-1 || !digits(mant[i+1:]) {
			return false
		}
		mant = mant[:i]
	}
	return digits(mant) && digits(exp) && len(exp) <= 3
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Problem is one bad name.
type Problem struct {
	Unit   string // "line" or "row"
	Line   int
	Value  string
	Kind   error // ErrEmpty, ErrDuplicate, ErrInvalid, ErrScientific
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s %d: %s", p.Unit, p.Line, p.Detail) }

// ProblemsError lists every bad name of a file.
type ProblemsError struct {
	Source   Source
	Problems []Problem
}

// problemsShown is how many problems the message lists.
const problemsShown = 10

func (e *ProblemsError) Error() string {
	lines := make([]string, 0, problemsShown+1)
	for i, p := range e.Problems {
		if i == problemsShown {
			lines = append(lines, fmt.Sprintf("… and %d more", len(e.Problems)-problemsShown))
			break
		}
		lines = append(lines, p.String())
	}
	return fmt.Sprintf("%d bad name(s) in %s:\n  %s", len(e.Problems), e.Source, strings.Join(lines, "\n  "))
}

// Unwrap gives each kind of problem found, for errors.Is.
func (e *ProblemsError) Unwrap() []error {
	var kinds []error
	for _, p := range e.Problems {
		dup := false
		for _, k := range kinds {
			dup = dup || k == p.Kind
		}
		if !dup {
			kinds = append(kinds, p.Kind)
		}
	}
	return kinds
}

// HeaderError is a file whose names column cannot be told: a header naming
// no known column, two candidates, or several columns and no header.
type HeaderError struct {
	Unit      string
	Line      int
	Cells     []string
	Ambiguous []int // the candidate columns, when there are several
	NoHeader  bool  // several columns and no header
}

func (e *HeaderError) Error() string {
	cols := columnList(e.Cells)
	switch {
	case len(e.Ambiguous) > 0:
		c := make([]string, len(e.Ambiguous))
		for i, n := range e.Ambiguous {
			c[i] = fmt.Sprintf("%d %q", n, strings.TrimSpace(e.Cells[n-1]))
		}
		return fmt.Sprintf("%v: the header on %s %d has several columns that could hold the device names (%s): choose one with --column NAME or --column N",
			ErrHeader, e.Unit, e.Line, strings.Join(c, ", "))
	case e.NoHeader:
		return fmt.Sprintf("%v: the file has %d columns and no header (%s %d: %s): choose the names column with --column N, or add a header naming it DeviceName, SN or IMEI",
			ErrHeader, len(e.Cells), e.Unit, e.Line, cols)
	}
	return fmt.Sprintf("%v: %s %d looks like a header, and none of its columns is a known names column (%s): the columns are %s: choose one with --column NAME or --column N, or --header no if %s %d holds device names",
		ErrHeader, e.Unit, e.Line, strings.Join(displayHeaders, ", "), cols, e.Unit, e.Line)
}

func (e *HeaderError) Unwrap() error { return ErrHeader }

var displayHeaders = []string{"DeviceName", "Name", "SN", "Serial Number", "IMEI", "MAC", "设备名称", "序列号"}

func columnList(cells []string) string {
	c := make([]string, len(cells))
	for i, f := range cells {
		c[i] = fmt.Sprintf("%d %q", i+1, strings.TrimSpace(f))
	}
	return strings.Join(c, ", ")
}

// ColumnError is a --column the file does not have.
type ColumnError struct {
	Asked     string
	Unit      string
	Header    record
	HasHeader bool
	Reason    string
}

func (e *ColumnError) Error() string {
	what := "the first " + e.Unit
	if e.HasHeader {
		what = "the header"
	}
	return fmt.Sprintf("%v: --column %q: %s: %s (%s %d) has %s", ErrColumn, e.Asked, e.Reason, what, e.Unit, e.Header.line, columnList(e.Header.fields))
}

func (e *ColumnError) Unwrap() error { return ErrColumn }
