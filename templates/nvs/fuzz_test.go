package nvs

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseCSV: ParseCSV never panics, and whatever it accepts and Generate
// fits reads back, item for item, with the values of the entries (under the
// namespace the generator's rule picks).
func FuzzParseCSV(f *testing.F) {
	for _, g := range goldens {
		f.Add(mustRead(g.csv))
	}
	f.Add(hdr + "ns,namespace,,\nk,data,string,\"a\"\"b\nc\"x\n#c\n\r\nq,data,base64,QQ==QUJD\n")
	f.Add(hdr + "ns,namespace,,\nk,data,blob_sz_fill(3;0x00),ab\nn,data,i64, -1_0 \n")
	f.Fuzz(func(t *testing.T, text string) {
		// File rows would read whatever path the fuzzer makes up (a FIFO, a
		// device); the golden tests cover them.
		if strings.Contains(text, "file") {
			return
		}
		entries, err := ParseCSV(strings.NewReader(text), t.TempDir())
		if err != nil {
			return
		}
		img, err := Generate(entries, 0x6000, V2)
		if err != nil {
			return
		}
		items, err := Read(img)
		if err != nil {
			t.Fatalf("Read of a generated image: %v", err)
		}
		want := expectItems(entries)
		if len(items) != len(want) {
			t.Fatalf("read %d items, wrote %d", len(items), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(items[i], want[i]) {
				t.Fatalf("item %d: read %+v, wrote %+v", i, items[i], want[i])
			}
		}
	})
}

// expectItems is what Read should return for entries: data rows in order,
// under the newest namespace.
func expectItems(entries []Entry) []Item {
	var out []Item
	seen, newest, current := map[string]bool{}, "", ""
	for _, e := range entries {
		name := e.Namespace
		if e.Kind == Namespace {
			name = e.Key
		}
		if name != "" && name != current {
			current = name
			if !seen[name] {
				seen[name], newest = true, name
			}
		}
		if e.Kind == Namespace {
			continue
		}
		it := Item{Namespace: newest, Key: e.Key, Kind: e.Kind}
		switch {
		case e.Kind.signed():
			it.Value = e.Int
		case e.Kind.primitive():
			it.Value = e.Uint
		case e.Kind == String:
			// Read stops at the first NUL, as the device's strlen would.
			s, _, _ := strings.Cut(e.Str, "\x00")
			it.Value = s
		default:
			it.Value = append([]byte{}, e.Data...)
		}
		out = append(out, it)
	}
	return out
}

// FuzzRead: Read never panics on damaged or made-up images. The input is
// padded with 0xFF to whole pages so the fuzzer reaches the page parser.
//
// Run with a short minimisation time: the seeds are pages of 4 KiB and the
// default (60 s for every new input) looks like a stall:
//
//	go test ./templates/nvs/ -run '^$' -fuzz 'FuzzRead$' -fuzztime 60s -fuzzminimizetime 1s
func FuzzRead(f *testing.F) {
	for _, name := range []string{"cred_tencent.bin", "blobs_v2.bin", "blobs_v1.bin", "ints_v2.bin"} {
		b, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:pageSize])
		f.Add(b[:300])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 8*pageSize {
			return
		}
		img := bytes.Clone(b)
		for len(img) == 0 || len(img)%pageSize != 0 {
			img = append(img, 0xFF)
		}
		_, _ = Read(img)
	})
}
