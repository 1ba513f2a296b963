package nvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

const hdr = "key,type,encoding,value\n"

// csvGenerate runs the CLI's path: ParseCSV then Generate.
func csvGenerate(text string, size int, v Version) ([]byte, error) {
	entries, err := ParseCSV(strings.NewReader(text), filepath.Join(testdata))
	if err != nil {
		return nil, err
	}
	return Generate(entries, size, v)
}

func TestBadInput(t *testing.T) {
	big := strings.Repeat("x", 3968) // + NUL = 3969 bytes: the generator crashes
	tests := []struct {
		name string
		csv  string
		size int
		v    Version
		want []string // substrings of the error
	}{
		{"unknown type", hdr + "ns,namespace,,\nk,dta,u8,1\n", 0x3000, V2, []string{"line 3", `unknown type "dta"`, "namespace, data or file"}},
		{"unknown encoding", hdr + "ns,namespace,,\nk,data,u9,1\n", 0x3000, V2, []string{"line 3", `unknown encoding "u9"`, "hex2bin"}},
		{"key of 16", hdr + "ns,namespace,,\n0123456789abcdef,data,u8,1\n", 0x3000, V2, []string{"line 3", "16 characters", "at most 15"}},
		{"namespace of 16", hdr + "0123456789abcdef,namespace,,\n", 0x3000, V2, []string{"line 2", "namespace", "16 characters"}},
		{"u8 of 256", hdr + "ns,namespace,,\nk,data,u8,256\n", 0x3000, V2, []string{"line 3", "256 is out of range for u8 (0..255)"}},
		{"u8 of -1", hdr + "ns,namespace,,\nk,data,u8,-1\n", 0x3000, V2, []string{"line 3", "out of range for u8"}},
		{"i8 of -129", hdr + "ns,namespace,,\nk,data,i8,-129\n", 0x3000, V2, []string{"line 3", "-129 is out of range for i8 (-128..127)"}},
		{"u64 of 2^64", hdr + "ns,namespace,,\nk,data,u64,18446744073709551616\n", 0x3000, V2, []string{"line 3", "not a decimal integer"}},
		{"i64 of 2^63", hdr + "ns,namespace,,\nk,data,i64,9223372036854775808\n", 0x3000, V2, []string{"line 3", "out of range for i64"}},
		{"hex integer", hdr + "ns,namespace,,\nk,data,u8,0x10\n", 0x3000, V2, []string{"line 3", "not a decimal integer", "not 0xff"}},
		{"line counts comments", "# one\n# two\n" + hdr + "ns,namespace,,\nk,data,u16,x\n", 0x3000, V2, []string{"line 5"}},
		{"odd hex", hdr + "ns,namespace,,\nk,data,hex2bin,abc\n", 0x3000, V2, []string{"line 3", "odd number of digits"}},
		{"bad hex", hdr + "ns,namespace,,\nk,data,hex2bin,zz\n", 0x3000, V2, []string{"line 3", "non-hexadecimal"}},
		{"bad base64 padding", hdr + "ns,namespace,,\nk,data,base64,QUJ\n", 0x3000, V2, []string{"line 3", "padding"}},
		{"bad base64 length", hdr + "ns,namespace,,\nk,data,base64,Q\n", 0x3000, V2, []string{"line 3", "1 more than a multiple of 4"}},
		{"missing file", hdr + "ns,namespace,,\nk,file,binary,files/nope.bin\n", 0x3000, V2, []string{"line 3", "nope.bin"}},
		{"no header", "ns,namespace,,\n", 0x3000, V2, []string{"line 1", "header"}},
		{"empty", "", 0x3000, V2, []string{"empty", "header"}},
		{"data before namespace", hdr + "k,data,u8,1\n", 0x3000, V2, []string{"line 2", "before any namespace"}},
		{"wifi key", hdr + "nvs.net80211,namespace,,\nsta.ssid,data,string,home\n", 0x3000, V2, []string{"line 3", "sta.ssid", "Wi-Fi"}},
		{"upper-case STRING", hdr + "ns,namespace,,\nk,data,STRING,x\n", 0x3000, V2, []string{"line 3", "lower case"}},
		{"binary non-ASCII", hdr + "ns,namespace,,\nk,data,binary,é\n", 0x3000, V2, []string{"line 3", "non-ASCII"}},
		{"non-ASCII key", hdr + "ns,namespace,,\nclé,data,u8,1\n", 0x3000, V2, []string{"line 3", "ASCII"}},
		{"blob_fill too long", hdr + "ns,namespace,,\nk,data,blob_fill(2;0xff),abc\n", 0x3000, V2, []string{"line 3", "longer than the 2"}},
		{"string over one page", hdr + "ns,namespace,,\nk,data,string," + big + "\n", 0x3000, V2, []string{"line 3", "3969 bytes", "at most 3968"}},
		{"string over v2 limit", hdr + "ns,namespace,,\nk,data,string," + big + big + "\n", 0x3000, V2, []string{"line 3", "the limit is 4000"}},
		{"v1 blob over 1984", hdr + "ns,namespace,,\nk,file,binary,files/blob5000.bin\n", 0x3000, V1, []string{"line 3", "at most 1984", "--nvs-version 2"}},
		{"partition too small", hdr + "ns,namespace,,\nk,file,binary,files/blob5000.bin\nk2,file,binary,files/blob5000.bin\n", 0x3000, V2, []string{"line 4", `key "k2" does not fit`, "needs 3 pages, partition has 2", "use --size 0x4000"}},
		{"read-only too small", hdr + "ns,namespace,,\nk,file,binary,files/blob5000.bin\n", 0x1000, V2, []string{"line 3", "needs 2 pages, partition has 1", "read-only", "use --size 0x3000"}},
		{"size not a multiple", hdr + "ns,namespace,,\n", 0x3001, V2, []string{"0x3001", "not a multiple of 4096"}},
		{"bad version", hdr, 0x3000, 3, []string{"version 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := csvGenerate(tt.csv, tt.size, tt.v)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// Entries built by hand (no CSV) get the same checks, without a line.
func TestGenerateEntryErrors(t *testing.T) {
	ns := Entry{Kind: Namespace, Key: "ns"}
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"u16 range", []Entry{ns, {Key: "k", Kind: U16, Uint: 65536}}, "65536 is out of range for u16"},
		{"i32 range", []Entry{ns, {Key: "k", Kind: I32, Int: 1 << 31}}, "out of range for i32"},
		{"key length", []Entry{ns, {Key: "sixteen_chars_xx", Kind: U8}}, "16 characters"},
		{"unknown kind", []Entry{ns, {Key: "k"}}, "unknown kind"},
		{"namespace 255", manyNamespaces(255), "at most 254"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Generate(tt.entries, 0x6000, V2)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "line") {
				t.Errorf("error %q names a line, the entries have none", err)
			}
		})
	}
}

func manyNamespaces(n int) []Entry {
	var e []Entry
	for i := 0; i < n; i++ {
		e = append(e, Entry{Kind: Namespace, Key: "n" + string(rune('a'+i/26%26)) + string(rune('a'+i%26)) + string(rune('0'+i/676))})
	}
	return e
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{"0x6000", 0x6000, ""},
		{"24576", 24576, ""},
		{" 0X3000 ", 0x3000, ""},
		{"0x_6000", 0x6000, ""},
		{"0o60000", 0x6000, ""},
		{"12_288", 0x3000, ""},
		{"0x1000", 0x1000, ""}, // read-only
		{"0x2000", 0x2000, ""}, // read-only
		{"0x6001", 0, "not a multiple of 4096"},
		{"0", 0, "too small"},
		{"-0x3000", 0, "negative"},
		{"012288", 0, "not a number"}, // int("012288", 0) is an error in Python too
		{"six", 0, "not a number"},
		{"", 0, "not a number"},
		{"0x1_0000_0000_0000", 0, "out of range"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseSize(%q) = %d, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
	if !IsReadOnly(0x2000) || IsReadOnly(0x3000) {
		t.Error("IsReadOnly: 0x2000 is read-only, 0x3000 is not")
	}
}

func TestParseCSVValues(t *testing.T) {
	tests := []struct {
		name string
		csv  string
		want Entry // the last entry
	}{
		{"python int syntax", hdr + "ns,namespace,,\nk,data,i32, -1_000 \n", Entry{Namespace: "ns", Key: "k", Kind: I32, Int: -1000, Line: 3}},
		{"upper-case primitive", hdr + "ns,namespace,,\nk,data,U16,+7\n", Entry{Namespace: "ns", Key: "k", Kind: U16, Uint: 7, Line: 3}},
		{"i64 min", hdr + "ns,namespace,,\nk,data,i64,-9223372036854775808\n", Entry{Namespace: "ns", Key: "k", Kind: I64, Int: -1 << 63, Line: 3}},
		{"header order", "value,encoding,type,key\n,,namespace,ns\n5,u8,data,k\n", Entry{Namespace: "ns", Key: "k", Kind: U8, Uint: 5, Line: 3}},
		{"CRLF and quotes", "key,type,encoding,value\r\nns,namespace,,\r\nk,data,string,\"a\"\"b,\r\nc\"\r\n", Entry{Namespace: "ns", Key: "k", Kind: String, Str: "a\"b,\nc", Line: 3}},
		{"text after closing quote", hdr + "ns,namespace,,\nk,data,string,\"ab\"cd\n", Entry{Namespace: "ns", Key: "k", Kind: String, Str: "abcd", Line: 3}},
		{"bare quote inside", hdr + "ns,namespace,,\nk,data,string,a\"b\n", Entry{Namespace: "ns", Key: "k", Kind: String, Str: "a\"b", Line: 3}},
		{"extra columns", hdr + "ns,namespace,,\nk,data,string,v,extra,more\n", Entry{Namespace: "ns", Key: "k", Kind: String, Str: "v", Line: 3}},
		{"blank lines", hdr + "\nns,namespace,,\n\n\nk,data,u8,1\n", Entry{Namespace: "ns", Key: "k", Kind: U8, Uint: 1, Line: 6}},
		{"BOM", "\xEF\xBB\xBF" + hdr + "ns,namespace,,\nk,data,u8,1", Entry{Namespace: "ns", Key: "k", Kind: U8, Uint: 1, Line: 3}},
		{"base64 with junk", hdr + "ns,namespace,,\nk,data,base64,QU JD\n", Entry{Namespace: "ns", Key: "k", Kind: Blob, Data: []byte("ABC"), Line: 3}},
		{"base64 stops at padding", hdr + "ns,namespace,,\nk,data,base64,QQ==QUJD\n", Entry{Namespace: "ns", Key: "k", Kind: Blob, Data: []byte("A"), Line: 3}},
		{"hex trimmed", hdr + "ns,namespace,,\nk,data,hex2bin,\t0aFF \n", Entry{Namespace: "ns", Key: "k", Kind: Blob, Data: []byte{0x0a, 0xff}, Line: 3}},
		{"blob_fill no value", hdr + "ns,namespace,,\nk,data,blob_fill(3;0x5a)\n", Entry{Namespace: "ns", Key: "k", Kind: Blob, Data: []byte("ZZZ"), Line: 3}},
		{"blob_sz_fill", hdr + "ns,namespace,,\nk,data,blob_sz_fill(4;0x00),ab\n", Entry{Namespace: "ns", Key: "k", Kind: Blob, Data: []byte{2, 0, 0, 0, 'a', 'b', 0, 0}, Line: 3}},
		{"file string", hdr + "ns,namespace,,\nk,file,string,files/hex.txt\n", Entry{Namespace: "ns", Key: "k", Kind: String, Str: mustRead("files/hex.txt"), Line: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ParseCSV(strings.NewReader(tt.csv), testdata)
			if err != nil {
				t.Fatal(err)
			}
			if got := entries[len(entries)-1]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func mustRead(name string) string {
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestReopenedRows(t *testing.T) {
	entries, err := ParseCSV(strings.NewReader(mustRead("namespaces_v2.csv")), testdata)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range ReopenedRows(entries) {
		keys = append(keys, e.Key)
	}
	if want := []string{"d", "e"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("ReopenedRows = %v, want %v", keys, want)
	}
}

// Entries without Namespace rows: a change of Entry.Namespace opens it.
func TestImplicitNamespaces(t *testing.T) {
	img, err := Generate([]Entry{
		{Namespace: "a", Key: "x", Kind: U8, Uint: 1},
		{Namespace: "b", Key: "y", Kind: String, Str: "yes"},
	}, 0x3000, V2)
	if err != nil {
		t.Fatal(err)
	}
	items, err := Read(img)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{{"a", "x", U8, uint64(1)}, {"b", "y", String, "yes"}}
	if !reflect.DeepEqual(items, want) {
		t.Errorf("got %+v, want %+v", items, want)
	}
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		c    registry.Credential
		want string
	}{
		{"unknown platform", Format{}, registry.Credential{Platform: "x", ProductID: "p", DeviceName: "d", DeviceSecret: "s"}, "no default NVS key names"},
		{"no secret", Format{}, registry.Credential{Platform: "tencent", ProductID: "p", DeviceName: "d"}, "device secret"},
		{"bad size", Format{Size: 100}, registry.Credential{Platform: "tencent", ProductID: "p", DeviceName: "d", DeviceSecret: "s"}, "not a multiple"},
		{"long key", Format{Keys: Keys{Namespace: "ns", ProductID: "a_very_long_key_name", DeviceName: "n", DeviceSecret: "s"}}, registry.Credential{ProductID: "p", DeviceName: "d", DeviceSecret: "s"}, "at most 15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.f.Render(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	if f := (Format{}); f.Name() != "nvs" || f.Ext() != ".bin" {
		t.Errorf("Name/Ext = %q/%q", f.Name(), f.Ext())
	}
}

// findEntry returns the offset of the first item header with this type and
// key (and chunk index, for BLOB_DATA) in a generator image.
func findEntry(t *testing.T, img []byte, typ byte, key string, chunk byte) int {
	t.Helper()
	for p := 0; p < len(img); p += pageSize {
		for i := 0; i < maxEntries; i++ {
			off := p + firstEntry + i*entrySize
			e := img[off : off+entrySize]
			if e[1] == typ && string(bytes.TrimRight(e[8:24], "\x00")) == key && (typ != typeBlobData || e[3] == chunk) && binary.LittleEndian.Uint32(e[4:]) == entryCRC(e) {
				return off
			}
		}
	}
	t.Fatalf("no entry type 0x%02x key %q", typ, key)
	return 0
}

func TestReadCorrupt(t *testing.T) {
	blobs, err := os.ReadFile(filepath.Join(testdata, "blobs_v2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	strs, err := os.ReadFile(filepath.Join(testdata, "strings_v2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ascii := findEntry(t, strs, typeSZ, "ascii", 0)
	big1 := findEntry(t, blobs, typeBlobData, "big", 1)
	bigIdx := findEntry(t, blobs, typeBlobIdx, "big", 0)
	tests := []struct {
		name    string
		img     []byte
		flip    int // byte to flip
		wantOff int // offset the error must name
		reason  string
	}{
		{"page header sequence", strs, 5, 0, "page header CRC"},
		{"page header of page 1", blobs, pageSize + 8, pageSize, "page header CRC"},
		{"entry key", strs, ascii + 9, ascii, "header CRC"},
		{"entry value", strs, ascii + 25, ascii, "header CRC"},
		{"string data", strs, ascii + entrySize + 3, ascii + entrySize, "data of \"ascii\""},
		{"blob chunk data", blobs, big1 + entrySize + 100, big1 + entrySize, "data of \"big\""},
		{"blob index size", blobs, bigIdx + 24, bigIdx, "header CRC"},
		{"bitmap", strs, 32, firstEntry, "marked empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := bytes.Clone(tt.img)
			img[tt.flip] ^= 0x01
			_, err := Read(img)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Read: %v, want a *CorruptError", err)
			}
			if ce.Offset != tt.wantOff || !strings.Contains(ce.Reason, tt.reason) {
				t.Errorf("error %q (offset 0x%X), want offset 0x%X and %q", err, ce.Offset, tt.wantOff, tt.reason)
			}
			if !strings.Contains(err.Error(), "offset 0x") {
				t.Errorf("error %q does not name the offset", err)
			}
		})
	}
	if _, err := Read(strs[:100]); err == nil {
		t.Error("Read of a truncated image: no error")
	}
}
