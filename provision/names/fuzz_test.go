package names

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// Whatever the bytes, Read either refuses them with one of its kinds or
// returns names that are each non-empty, trimmed, unique, not scientific
// notation and within the platform's rule, from a column the file has.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"a\nb\n", "name,sn\n\"x,y\",1\n", "\"unterminated\n", "Index,Serial Number,Remark\n1,SN001,\n",
		"Index;IMEI\n1;8,68139E+14\n", "\ufeffDeviceName\r\ndev1\r\n", "a\tb\tc\n1\t2\t3\n", "#c\n\n x \n",
		"SN,IMEI\nS1,1\n", "\"a\"\"b\",c\n", "\xd0\xf2\xba\xc5,SN\n1,S1\n",
	} {
		f.Add([]byte(s), "", uint8(0))
	}
	f.Add(utf16File("Index\tIMEI\r\n1\t868139012345678\r\n", false), "", uint8(0))
	f.Add(utf16File("DeviceName\ndev:1\n", true), "1", uint8(2))
	f.Add([]byte("Index,Code\n1,C-01\n"), "Code", uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, column string, header uint8) {
		if bytes.HasPrefix(data, []byte("PK")) {
			return // FuzzReadXLSX's
		}
		o := Options{Column: column, Header: HeaderMode(header % 3), Rule: tencent}
		l, err := Read(data, o)
		if err != nil {
			for _, k := range []error{ErrFormat, ErrEncoding, ErrSyntax, ErrHeader, ErrColumn, ErrNoNames,
				ErrEmpty, ErrDuplicate, ErrInvalid, ErrScientific} {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("error of no known kind: %v", err)
		}
		checkList(t, l)
	})
}

func checkList(t *testing.T, l List) {
	t.Helper()
	if len(l.Names) == 0 {
		t.Fatal("no names and no error")
	}
	if l.Source.Column < 1 || l.Source.Column > l.Source.Columns {
		t.Fatalf("column %d of %d", l.Source.Column, l.Source.Columns)
	}
	seen := map[string]bool{}
	last := 0
	for _, n := range l.Names {
		if n.Value == "" || n.Value != strings.TrimSpace(n.Value) || seen[n.Value] || scientific(n.Value) || tencent(n.Value) != nil {
			t.Fatalf("accepted %q", n.Value)
		}
		if n.Line <= last || n.Line <= l.Source.HeaderLine {
			t.Fatalf("name %q on line %d after line %d (header %d)", n.Value, n.Line, last, l.Source.HeaderLine)
		}
		seen[n.Value], last = true, n.Line
	}
}

// Records written by encoding/csv, with any of the three separators, read
// back the same through parseCSV: the two agree on quoting, separators in
// quotes, doubled quotes and line breaks inside fields.
func FuzzParseCSVRoundTrip(f *testing.F) {
	f.Add("a\x01b\x00c\x01d", uint8(0), false)
	f.Add("x, y\x01\"q\"\x00\x01", uint8(1), true)
	f.Add("line\nbreak\x01ta\tb\x00 lead\x01", uint8(2), false)
	f.Add("\x00\x00", uint8(0), true)
	f.Fuzz(func(t *testing.T, in string, sepIdx uint8, crlf bool) {
		sep := separators[int(sepIdx)%len(separators)]
		var want [][]string
		for _, r := range strings.Split(in, "\x00") {
			fields := strings.Split(r, "\x01")
			if t := strings.TrimLeft(fields[0], " \t"); strings.HasPrefix(t, "#") && t == fields[0] {
				return // an unquoted '#' first is a comment line here
			}
			want = append(want, fields)
		}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Comma, w.UseCRLF = sep, crlf
		if err := w.WriteAll(want); err != nil {
			return // a separator encoding/csv refuses
		}
		got, err := parseCSV(buf.String(), sep, 0)
		if err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d records, want %d", buf.String(), len(got), len(want))
		}
		for i := range want {
			// Line breaks in a field come back as \n, whichever were
			// written; with UseCRLF encoding/csv drops a field's \r.
			norm := strings.NewReplacer("\r\n", "\n", "\r", "\n")
			if crlf {
				norm = strings.NewReplacer("\r", "")
			}
			exp := make([]string, len(want[i]))
			for j, f := range want[i] {
				exp[j] = norm.Replace(f)
			}
			if strings.Join(got[i].fields, "\x01") != strings.Join(exp, "\x01") {
				t.Fatalf("%q: record %d = %q, want %q", buf.String(), i, got[i].fields, exp)
			}
			if i > 0 && got[i].line <= got[i-1].line {
				t.Fatalf("record %d on line %d after line %d", i, got[i].line, got[i-1].line)
			}
		}
	})
}

// A workbook made of any cells is read or refused, never a panic, never a
// bad name; and when the same rows as a CSV are read too, both give the same
// names. (The cells are fuzzed rather than the zip's bytes: a mutated zip
// fails its CRC before excelize reads a cell, and the sheet is what this
// package parses.)
func FuzzReadXLSX(f *testing.F) {
	f.Add("Index\x01Serial Number\x01Remark\x001\x01SN001\x01\x002\x01SN002\x01x", uint8(0))
	f.Add("IMEI\x00868139012345678\x008.68139E+14", uint8(0))
	f.Add("DeviceName\x00dev1\x00\x00dev2", uint8(1))
	f.Add("a1\x00a1", uint8(2))
	f.Fuzz(func(t *testing.T, in string, header uint8) {
		if strings.ContainsFunc(in, func(r rune) bool { return r < 0x20 && r != 0 && r != 1 || r == utf8.RuneError || r == '#' }) || len(in) > 4096 {
			return // XML cannot hold control characters; '#' starts a comment in a CSV only
		}
		var rows [][]string
		for _, r := range strings.Split(in, "\x00") {
			rows = append(rows, strings.Split(r, "\x01"))
		}
		wb := excelize.NewFile()
		defer wb.Close()
		for r, row := range rows {
			for c, v := range row {
				cellName, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if err := wb.SetCellStr("Sheet1", cellName, v); err != nil {
					return
				}
			}
		}
		buf, err := wb.WriteToBuffer()
		if err != nil {
			t.Fatal(err)
		}
		o := Options{Header: HeaderMode(header % 3), Rule: tencent}
		x, xerr := Read(buf.Bytes(), o)
		if xerr == nil {
			checkList(t, x)
		}
		var text bytes.Buffer
		w := csv.NewWriter(&text)
		if err := w.WriteAll(rows); err != nil {
			t.Fatal(err)
		}
		c, cerr := Read(text.Bytes(), o)
		if xerr == nil && cerr == nil && strings.Join(x.Values(), "|") != strings.Join(c.Values(), "|") {
			t.Fatalf("xlsx gives %q, the same rows as CSV %q", x.Values(), c.Values())
		}
	})
}
