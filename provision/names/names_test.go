package names

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/xuri/excelize/v2"
)

// The platforms' rules written out here independently of rules.go, so the
// tests do not take their expectations from the code under test.
var (
	tencentRe = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,48}$`)
	aliyunRe  = regexp.MustCompile(`^[A-Za-z0-9_@.:-]{4,32}$`)
)

func tencent(n string) error {
	if !tencentRe.MatchString(n) {
		return errors.New("not a Tencent name")
	}
	return nil
}

func aliyun(n string) error {
	if !aliyunRe.MatchString(n) {
		return errors.New("not an Aliyun name")
	}
	return nil
}

// utf16File is s as Excel's "Unicode Text" writes it: a BOM, then UTF-16.
func utf16File(s string, bigEndian bool) []byte {
	var order binary.AppendByteOrder = binary.LittleEndian
	if bigEndian {
		order = binary.BigEndian
	}
	out := order.AppendUint16(nil, 0xFEFF)
	for _, u := range utf16.Encode([]rune(s)) {
		out = order.AppendUint16(out, u)
	}
	return out
}

// GBK bytes written by hand (Python's '序号'.encode('gbk') and so on), so the
// decoder is checked against something it did not produce.
var (
	gbkXuHao    = []byte{0xD0, 0xF2, 0xBA, 0xC5}             // 序号 (index)
	gbkXuLieHao = []byte{0xD0, 0xF2, 0xC1, 0xD0, 0xBA, 0xC5} // 序列号 (serial number)
	gbkBeiZhu   = []byte{0xB1, 0xB8, 0xD7, 0xA2}             // 备注 (remark)
	gbkHeGe     = []byte{0xBA, 0xCF, 0xB8, 0xF1}             // 合格 (passed)
	gbkBianMa   = []byte{0xB1, 0xE0, 0xC2, 0xEB}             // 编码 (code)
)

func join(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func b(s string) []byte { return []byte(s) }

func TestRead(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		opt  Options
		want []string
		// The source as the operator is told it.
		wantCol, wantHeaderLine int
		wantEnc                 string
		wantSep                 rune
	}{
		{name: "plain list", in: b("dev1\ndev2\r\ndev3\n\n\n"), want: []string{"dev1", "dev2", "dev3"}, wantCol: 1, wantEnc: UTF8},
		{name: "lone CR line ends", in: b("dev1\rdev2\r"), want: []string{"dev1", "dev2"}, wantCol: 1, wantEnc: UTF8},
		{name: "comments and BOM", in: b("\ufeff# batch 7\ndev1\n  # x\ndev2\n"), want: []string{"dev1", "dev2"}, wantCol: 1, wantEnc: UTF8BOM},
		{name: "blank lines above", in: b("\n\ndev1\ndev2\n"), want: []string{"dev1", "dev2"}, wantCol: 1, wantEnc: UTF8},
		// Excel's export of an empty row above a one-column list: ",,"
		// (the fuzzer's find: the same sheet as .xlsx has no such row).
		{name: "empty rows exported as commas", in: b(",,\n;\ndev1\ndev2\n,,\n"), want: []string{"dev1", "dev2"}, wantCol: 1, wantEnc: UTF8},
		{name: "device name column outranks ids", in: b("sn,DeviceName,imei\nS1,dev-a,1\nS2,dev-b,2\n"),
			want: []string{"dev-a", "dev-b"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
		{name: "issue 11 file: the serial numbers", in: b("Index,Serial Number,Remark\n1,SN001,\n2,SN002,\n3,SN003,re-test\n"),
			want: []string{"SN001", "SN002", "SN003"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
		{name: "semicolons, decimal commas in another column", in: b("Index;Serial Number;Weight\r\n1;SN001;1,5\r\n2;SN002;2,25\r\n"),
			want: []string{"SN001", "SN002"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ';'},
		{name: "excel unicode text: UTF-16LE, tabs", in: utf16File("Index\tIMEI\tRemark\r\n1\t868139012345678\tok\r\n2\t868139012345686\t\r\n", false),
			want: []string{"868139012345678", "868139012345686"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF16LE, wantSep: '\t'},
		{name: "UTF-16BE", in: utf16File("DeviceName\ndev:1\ndev:2\n", true),
			want: []string{"dev:1", "dev:2"}, wantCol: 1, wantHeaderLine: 1, wantEnc: UTF16BE},
		{name: "GBK, Chinese header", in: join(gbkXuHao, b(","), gbkXuLieHao, b(","), gbkBeiZhu, b("\r\n1,SN-0001,"), gbkHeGe, b("\r\n2,SN-0002,\r\n")),
			want: []string{"SN-0001", "SN-0002"}, wantCol: 2, wantHeaderLine: 1, wantEnc: GBK, wantSep: ','},
		{name: "GBK header, column by its Chinese name", in: join(gbkXuHao, b(","), gbkBianMa, b("\r\n1,C-01\r\n2,C-02\r\n")),
			opt: Options{Column: "编码"}, want: []string{"C-01", "C-02"}, wantCol: 2, wantHeaderLine: 1, wantEnc: GBK, wantSep: ','},
		{name: "quoted fields", in: b("DeviceName,Remark\n\"dev:1\",\"a, b\"\n\"dev\"\"2\",x\n"), opt: Options{Rule: nil},
			want: []string{"dev:1", `dev"2`}, wantCol: 1, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
		{name: "column by header, any case", in: b("Index,Code,Remark\n1,C-01,ok\n2,C-02,ok\n"), opt: Options{Column: "code"},
			want: []string{"C-01", "C-02"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
		{name: "column by number under an unknown header", in: b("Index,Code,Remark\n1,C-01,ok\n2,C-02,ok\n"), opt: Options{Column: "2"},
			want: []string{"C-01", "C-02"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
		{name: "no header, column by number", in: b("dev-a,x\ndev-b,y\n"), opt: Options{Column: "1"},
			want: []string{"dev-a", "dev-b"}, wantCol: 1, wantEnc: UTF8, wantSep: ','},
		{name: "ambiguous ids, one chosen", in: b("SN,IMEI\nS1,868139012345678\nS2,868139012345686\n"), opt: Options{Column: "IMEI"},
			want: []string{"868139012345678", "868139012345686"}, wantCol: 2, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
		{name: "header no: the first line is a name", in: b("gateway\ndev001\ndev002\n"), opt: Options{Header: HeaderNo},
			want: []string{"gateway", "dev001", "dev002"}, wantCol: 1, wantEnc: UTF8},
		{name: "header yes", in: b("whatever\ndev001\n"), opt: Options{Header: HeaderYes},
			want: []string{"dev001"}, wantCol: 1, wantHeaderLine: 1, wantEnc: UTF8},
		{name: "mixed shapes are names, not a header", in: b("gateway\nsensor-2\ndev3\n"),
			want: []string{"gateway", "sensor-2", "dev3"}, wantCol: 1, wantEnc: UTF8},
		{name: "hex serials are not scientific", in: b("SN\n12E4\n12E5\n1E+\n"),
			want: []string{"12E4", "12E5", "1E+"}, opt: Options{Rule: nil}, wantCol: 1, wantHeaderLine: 1, wantEnc: UTF8},
		{name: "cells trimmed, trailing empty rows", in: b("MAC,Remark\n 24:0a:c4:00:00:01 ,\n24:0a:c4:00:00:02,\n,\n,,\n"),
			want: []string{"24:0a:c4:00:00:01", "24:0a:c4:00:00:02"}, wantCol: 1, wantHeaderLine: 1, wantEnc: UTF8, wantSep: ','},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opt.Rule == nil && !strings.Contains(tt.name, "quoted") && !strings.Contains(tt.name, "hex") {
				tt.opt.Rule = tencent
			}
			l, err := Read(tt.in, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(l.Values(), "|"); got != strings.Join(tt.want, "|") {
				t.Fatalf("names %q, want %q", l.Values(), tt.want)
			}
			s := l.Source
			if s.Column != tt.wantCol || s.HeaderLine != tt.wantHeaderLine || s.Encoding != tt.wantEnc || s.Separator != tt.wantSep {
				t.Errorf("source %+v, want column %d, header line %d, %s, separator %q", s, tt.wantCol, tt.wantHeaderLine, tt.wantEnc, tt.wantSep)
			}
		})
	}
}

func TestReadRefused(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		opt  Options
		kind error
		want []string // in the message
	}{
		{name: "unknown header", in: b("Index,Code,Remark\n1,C-01,ok\n2,C-02,ok\n"), kind: ErrHeader,
			want: []string{"line 1", `1 "Index", 2 "Code", 3 "Remark"`, "--column"}},
		{name: "unknown GBK header lists it decoded", in: join(gbkXuHao, b(","), gbkBianMa, b("\r\n1,C-01\r\n2,C-02\r\n")), kind: ErrHeader,
			want: []string{`1 "序号", 2 "编码"`}},
		{name: "one column, header unlike the names", in: b("Devices\ndev001\ndev002\n"), kind: ErrHeader,
			want: []string{`1 "Devices"`, "--header no"}},
		{name: "ambiguous ids", in: b("SN,IMEI\nS1,868139012345678\nS2,868139012345686\n"), kind: ErrHeader,
			want: []string{`1 "SN", 2 "IMEI"`, "--column"}},
		{name: "columns and no header", in: b("dev-a,x\ndev-b,y\n"), kind: ErrHeader,
			want: []string{"2 columns and no header", `1 "dev-a", 2 "x"`, "--column N"}},
		{name: "no such header", in: b("Index,Serial Number\n1,SN1\n"), opt: Options{Column: "IMEI"}, kind: ErrColumn,
			want: []string{`"IMEI"`, `1 "Index", 2 "Serial Number"`}},
		{name: "column out of range", in: b("Index,Serial Number\n1,SN1\n"), opt: Options{Column: "3"}, kind: ErrColumn,
			want: []string{"2 column(s)"}},
		{name: "column zero", in: b("a1\n"), opt: Options{Column: "0"}, kind: ErrColumn, want: []string{"from 1"}},
		{name: "scientific IMEI", in: b("Index,IMEI\n1,8.68139E+14\n2,8.68139E+14\n"), kind: ErrScientific,
			want: []string{"line 2", "line 3", "8.68139E+14", "format the column as text in Excel"}},
		{name: "scientific with a decimal comma", in: b("Index;IMEI\n1;8,68139E+14\n2;868139012345686\n"), kind: ErrScientific,
			want: []string{"line 2", "format the column as text in Excel"}},
		{name: "scientific, no fraction", in: b("1E+15\n"), kind: ErrScientific, want: []string{"line 1"}},
		{name: "duplicate", in: b("a1\nb2\na1\n"), kind: ErrDuplicate, want: []string{"line 3", "duplicate of line 1"}},
		{name: "duplicate under a header", in: b("Index,SN\n1,S1\n2,S2\n3,S1\n"), kind: ErrDuplicate, want: []string{"line 4", "duplicate of line 2"}},
		{name: "empty middle line", in: b("a1\n\nb2\n"), kind: ErrEmpty, want: []string{"line 2", "empty name", "line is blank"}},
		{name: "empty names cell", in: b("SN,Remark\nS1,ok\n,forgot\n"), kind: ErrEmpty, want: []string{"line 3", "empty name"}},
		{name: "too long for Tencent", in: b("ok\n" + strings.Repeat("x", 49) + "\n"), kind: ErrInvalid, want: []string{"line 2"}},
		{name: "space", in: b("ok1\nsp ace\nslash/\n"), kind: ErrInvalid, want: []string{"2 bad name(s)", "line 2", "line 3"}},
		{name: "too short for Aliyun", in: b("abcd\nabc\n"), opt: Options{Rule: aliyun}, kind: ErrInvalid, want: []string{"line 2", `"abc"`}},
		{name: "only a header", in: b("DeviceName\n"), kind: ErrNoNames},
		{name: "empty file", in: b("\n\n"), kind: ErrNoNames},
		{name: "unterminated quote", in: b("DeviceName\ndev1\n\"dev2\ndev3\n"), kind: ErrSyntax, want: []string{"line 3", "never closed"}},
		{name: "text after a quote", in: b("DeviceName,x\n\"dev1\"x,y\n"), kind: ErrSyntax, want: []string{"line 2"}},
		{name: "UTF-32", in: []byte{0xFF, 0xFE, 0, 0, 'a', 0, 0, 0}, kind: ErrEncoding, want: []string{"UTF-32", "CSV UTF-8"}},
		{name: "UTF-16 without BOM", in: []byte{'a', 0, '1', 0, '\n', 0}, kind: ErrEncoding, want: []string{"NUL"}},
		{name: "UTF-16 cut short", in: append(utf16File("dev1\n", false), 'x'), kind: ErrEncoding, want: []string{"odd number"}},
		{name: "UTF-16 broken surrogate", in: []byte{0xFF, 0xFE, 0x00, 0xD8, 'a', 0}, kind: ErrEncoding, want: []string{"surrogate"}},
		{name: "neither UTF-8 nor GBK", in: b("dev1\n\xff\xff\n"), kind: ErrEncoding, want: []string{"neither UTF-8 nor GBK"}},
		{name: "BOM then not UTF-8", in: b("\xef\xbb\xbfdev1\n\xff\n"), kind: ErrEncoding},
		{name: "old .xls", in: append(append([]byte(nil), xlsMagic...), make([]byte, 504)...), kind: ErrFormat, want: []string{".xls", ".xlsx"}},
		{name: "a zip that is no workbook", in: b("PK\x03\x04garbage"), kind: ErrFormat, want: []string{".xlsx"}},
		{name: "column name with header no", in: b("a1\n"), opt: Options{Column: "SN", Header: HeaderNo}, kind: ErrColumn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opt.Rule == nil {
				tt.opt.Rule = tencent
			}
			l, err := Read(tt.in, tt.opt)
			if err == nil {
				t.Fatalf("accepted: %q from %s", l.Values(), l.Source)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Several kinds in one file are each found with errors.Is, and the message
// lists at most ten problems.
func TestProblemsErrorKinds(t *testing.T) {
	in := "a1\na1\n\nsp ace\n8.68139E+14\n"
	for i := range 20 {
		in += "x y" + strings.Repeat("z", i) + "\n"
	}
	_, err := Read(b(in), Options{Rule: tencent})
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("err %v is not a *ProblemsError", err)
	}
	if len(pe.Problems) != 24 {
		t.Errorf("%d problems, want 24", len(pe.Problems))
	}
	for _, k := range []error{ErrDuplicate, ErrEmpty, ErrInvalid, ErrScientific} {
		if !errors.Is(err, k) {
			t.Errorf("errors.Is(err, %v) is false", k)
		}
	}
	if errors.Is(err, ErrHeader) {
		t.Error("a header problem that is not there")
	}
	if !strings.Contains(err.Error(), "… and 14 more") {
		t.Errorf("message does not cut the list at ten:\n%s", err)
	}
}

// xlsxFile writes a workbook with excelize, as a factory's spreadsheet is.
func xlsxFile(t testing.TB, dir string, sheets map[string][][]any, order ...string) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, name := range order {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(name); err != nil {
			t.Fatal(err)
		}
		for r, row := range sheets[name] {
			for c, v := range row {
				if v == nil {
					continue
				}
				cellName, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if err := f.SetCellValue(name, cellName, v); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	p := filepath.Join(dir, "names.xlsx")
	if err := f.SaveAs(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadXLSX(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		sheets map[string][][]any
		order  []string
		opt    Options
		want   []string
		kind   error
		msg    []string
	}{
		{name: "issue 11 layout", order: []string{"Serials"}, sheets: map[string][][]any{"Serials": {
			{"Index", "Serial Number", "Remark"}, {1, "SN001", nil}, {2, "SN002", "re-test"}, {3, "SN003", nil}}},
			want: []string{"SN001", "SN002", "SN003"}},
		{name: "numeric IMEI cells read as their digits", order: []string{"Sheet1"}, sheets: map[string][][]any{"Sheet1": {
			{"IMEI"}, {int64(868139012345678)}, {int64(868139012345686)}}},
			want: []string{"868139012345678", "868139012345686"}},
		{name: "the first of two sheets", order: []string{"Batch 7", "Notes"}, sheets: map[string][][]any{
			"Batch 7": {{"DeviceName"}, {"dev001"}}, "Notes": {{"DeviceName"}, {"other"}}},
			want: []string{"dev001"}},
		{name: "scientific typed as text", order: []string{"Sheet1"}, sheets: map[string][][]any{"Sheet1": {
			{"Index", "IMEI"}, {1, "868139012345678"}, {2, "8.68139E+14"}}},
			kind: ErrScientific, msg: []string{"row 3", "format the column as text in Excel"}},
		{name: "empty row in the middle", order: []string{"Sheet1"}, sheets: map[string][][]any{"Sheet1": {
			{"SN"}, {"S1"}, {nil}, {"S2"}}},
			kind: ErrEmpty, msg: []string{"row 3"}},
		{name: "unknown header", order: []string{"Sheet1"}, sheets: map[string][][]any{"Sheet1": {
			{"No.", "Code"}, {1, "C-01"}, {2, "C-02"}}},
			kind: ErrHeader, msg: []string{"row 1", `1 "No.", 2 "Code"`}},
		{name: "unknown header, column chosen", order: []string{"Sheet1"}, sheets: map[string][][]any{"Sheet1": {
			{"No.", "Code"}, {1, "C-01"}, {2, "C-02"}}},
			opt: Options{Column: "Code"}, want: []string{"C-01", "C-02"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := xlsxFile(t, dir, tt.sheets, tt.order...)
			tt.opt.Rule = tencent
			l, err := ReadFile(p, tt.opt)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("err %v, want %v", err, tt.kind)
				}
				for _, w := range tt.msg {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(l.Values(), "|"); got != strings.Join(tt.want, "|") {
				t.Fatalf("names %q, want %q", l.Values(), tt.want)
			}
			if l.Source.Kind != "xlsx" || l.Source.Sheet != tt.order[0] || l.Source.Sheets != len(tt.order) {
				t.Errorf("source %+v", l.Source)
			}
		})
	}
}

// An .xlsx is known by its content, whatever it is called.
func TestReadFileXLSXNamedCSV(t *testing.T) {
	dir := t.TempDir()
	p := xlsxFile(t, dir, map[string][][]any{"S": {{"SN"}, {"S-1"}}}, "S")
	csv := filepath.Join(dir, "names.csv")
	if err := os.Rename(p, csv); err != nil {
		t.Fatal(err)
	}
	l, err := ReadFile(csv, Options{Rule: tencent})
	if err != nil || strings.Join(l.Values(), "|") != "S-1" {
		t.Fatalf("%q, %v", l.Values(), err)
	}
	if _, err := ReadFile(filepath.Join(dir, "none.csv"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestSourceString(t *testing.T) {
	for _, tt := range []struct {
		s    Source
		want string
	}{
		{Source{Kind: "csv", Encoding: UTF16LE, Separator: '\t', HeaderLine: 1, Column: 2, ColumnName: "IMEI"},
			`column 2 "IMEI" (CSV, UTF-16LE, tab-separated, header on line 1)`},
		{Source{Kind: "csv", Encoding: UTF8, Column: 1}, `column 1 (CSV, UTF-8, no header)`},
		{Source{Kind: "xlsx", Sheet: "Batch 7", Sheets: 2, HeaderLine: 1, Column: 1, ColumnName: "SN"},
			`column 1 "SN" of sheet "Batch 7" (xlsx, the first of 2 sheets, header on row 1)`},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestPlatformRule(t *testing.T) {
	for _, tt := range []struct {
		platform, name string
		ok             bool
	}{
		{"tencent", "a", true}, {"tencent", strings.Repeat("a", 48), true}, {"tencent", strings.Repeat("a", 49), false},
		{"tencent", "dev:1_2-3", true}, {"tencent", "dev.1", false}, {"tencent", "dev@1", false}, {"tencent", "", false},
		{"aliyun", "abc", false}, {"aliyun", "abcd", true}, {"aliyun", strings.Repeat("a", 32), true},
		{"aliyun", strings.Repeat("a", 33), false}, {"aliyun", "a.b@c:d-e_f", true}, {"aliyun", "ab cd", false},
	} {
		rule, err := PlatformRule(tt.platform)
		if err != nil {
			t.Fatal(err)
		}
		if err := rule(tt.name); (err == nil) != tt.ok {
			t.Errorf("%s %q: %v, want ok=%v", tt.platform, tt.name, err, tt.ok)
		}
	}
	if _, err := PlatformRule("aws"); err == nil {
		t.Error("an unknown platform has a rule")
	}
}

func TestParseHeaderMode(t *testing.T) {
	for in, want := range map[string]HeaderMode{"": HeaderAuto, "auto": HeaderAuto, "YES": HeaderYes, "no": HeaderNo} {
		if got, err := ParseHeaderMode(in); err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	if _, err := ParseHeaderMode("maybe"); err == nil {
		t.Error("maybe accepted")
	}
}
