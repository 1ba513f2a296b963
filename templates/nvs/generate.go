package nvs

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// blankPage is what an erased flash page holds; pages are copied from it.
var blankPage = func() []byte {
	b := make([]byte, pageSize)
	for i := range b {
		b[i] = 0xFF
	}
	return b
}()

// Generate writes the NVS partition image for entries, as
// `nvs_partition_gen.py generate in.csv out.bin SIZE --version V` (0.2.0)
// does: for size ≥ 0x3000 the result is size bytes; for the read-only sizes
// 0x1000 and 0x2000 it is only the pages used. v 0 means V2.
//
// Errors name the CSV line of the entry (Entry.Line) when there is one.
func Generate(entries []Entry, size int, v Version) ([]byte, error) {
	if v == 0 {
		v = V2
	}
	if v != V1 && v != V2 {
		return nil, fmt.Errorf("nvs: version %d: use 1 or 2", int(v))
	}
	if err := checkSize(size); err != nil {
		return nil, err
	}
	// The generator's budget of data pages: one page is reserved from 0x3000
	// up, none in a read-only partition.
	budget := size / pageSize
	if !IsReadOnly(size) {
		budget--
	}
	w := &writer{version: v, buf: make([]byte, 0, size), budget: budget}
	w.newPage()
	for i := range entries {
		w.en = &entries[i]
		if err := w.write(&entries[i]); err != nil {
			return nil, err
		}
	}
	if used := w.page + 1; used > budget {
		// Suggest the smallest read/write size that fits: the data pages
		// plus the reserved one, never below the 0x3000 minimum.
		need := max(used+1, 3)
		how := "one page reserved"
		if IsReadOnly(size) {
			how = "read-only"
		}
		return nil, lineErr(w.overflow.Line, "key %q does not fit: the data needs %d pages, partition has %d (0x%X bytes, %s): use --size 0x%X",
			w.overflow.Key, used, budget, size, how, need*pageSize)
	}
	if IsReadOnly(size) {
		return w.buf, nil
	}
	// Blank (0xFF, headerless) pages up to the partition size: the last data
	// page stays ACTIVE, as in the generator's __exit__.
	for len(w.buf) < size {
		w.buf = append(w.buf, blankPage...)
	}
	return w.buf, nil
}

// IsReadOnly reports whether a partition of this size can only be read-only
// (the generator's rule: below 0x3000 there is no room for the spare page
// ESP-IDF needs to write). Such images must be flagged "readonly" in the
// partition table.
func IsReadOnly(size int) bool { return size == pageSize || size == 2*pageSize }

// writer is the generator's NVS object: the pages so far, the current page's
// entry count and the namespace table.
type writer struct {
	version  Version
	buf      []byte // all pages so far, page after page
	page     int    // index of the current page
	entryNum int    // entries used on the current page

	nsCount   int            // namespaces created (the generator's namespace_count)
	nsCurrent string         // the namespace last opened, for Entry.Namespace
	nsIndex   map[string]int // created namespaces
	e         [entrySize]byte

	budget   int    // data pages the partition holds
	en       *Entry // the entry being written
	overflow Entry  // the first entry that needed a page beyond the budget
}

// cur is the current page's bytes.
func (w *writer) cur() []byte { return w.buf[w.page*pageSize : (w.page+1)*pageSize] }

// newPage appends a data page with its header, turning the previous one FULL
// (create_new_page). Pages beyond the partition are still made, so that the
// size error can say how many are needed.
func (w *writer) newPage() {
	if len(w.buf) > 0 {
		p := w.cur()
		if binary.LittleEndian.Uint32(p) == stateActive {
			binary.LittleEndian.PutUint32(p, stateFull)
		}
		w.page++
		if w.page == w.budget && w.en != nil {
			w.overflow = *w.en
		}
	}
	w.buf = append(w.buf, blankPage...)
	p := w.cur()
	binary.LittleEndian.PutUint32(p[0:], stateActive)
	binary.LittleEndian.PutUint32(p[4:], uint32(w.page))
	if w.version == V1 {
		p[8] = versionByte1
	} else {
		p[8] = versionByte2
	}
	binary.LittleEndian.PutUint32(p[28:], crc(p[4:28]))
	w.entryNum = 0
}

// put copies data into the current page from the current entry on and marks
// n entries WRITTEN in the bitmap (write_entry_to_buf).
func (w *writer) put(data []byte, n int) {
	p := w.cur()
	copy(p[firstEntry+entrySize*w.entryNum:], data)
	for i := 0; i < n; i++ {
		bit := w.entryNum * 2
		p[32+bit/8] &^= 1 << (bit % 8)
		w.entryNum++
	}
}

// header fills w.e with an item header: 0xFF, then namespace, type, span,
// chunk index and the NUL-padded key.
func (w *writer) header(ns int, typ byte, span, chunk int, key string) []byte {
	e := w.e[:]
	copy(e, blankPage[:entrySize])
	e[0], e[1], e[2], e[3] = byte(ns), typ, byte(span), byte(chunk)
	clear(e[8:24])
	copy(e[8:24], key)
	return e
}

// seal stores the header CRC and writes the entry.
func (w *writer) seal(e []byte) {
	binary.LittleEndian.PutUint32(e[4:], entryCRC(e))
	w.put(e, 1)
}

func (w *writer) write(en *Entry) error {
	if err := checkKey(en); err != nil {
		return err
	}
	if en.Kind == Namespace {
		return w.openNamespace(en.Key, en.Line)
	}
	if en.Namespace != "" && en.Namespace != w.nsCurrent {
		if err := w.openNamespace(en.Namespace, en.Line); err != nil {
			return err
		}
	}
	if w.nsCount == 0 {
		return lineErr(en.Line, "key %q comes before any namespace row: add a namespace row first (Espressif's generator would write it as a namespace definition)", en.Key)
	}
	// The generator's quirk: data always goes under the newest namespace.
	ns := w.nsCount
	switch {
	case en.Kind.primitive():
		return w.primitive(ns, en)
	case en.Kind == String:
		if !utf8.ValidString(en.Str) {
			return lineErr(en.Line, "key %q: string is not valid UTF-8", en.Key)
		}
		n := len(en.Str) + 1 // the NUL
		if limit := w.stringLimit(); n > limit {
			return lineErr(en.Line, "key %q: string is %d bytes with its NUL, the limit is %d", en.Key, n, limit)
		}
		if n > maxFitString {
			return lineErr(en.Line, "key %q: string is %d bytes with its NUL; a string must fit in one page, at most %d bytes (Espressif's generator crashes on this one): store it as a blob (hex2bin, base64 or file/binary)", en.Key, n, maxFitString)
		}
		data := make([]byte, n)
		copy(data, en.Str)
		w.singlePage(ns, typeSZ, en.Key, data)
	case en.Kind == Blob:
		if w.version == V1 {
			if n := len(en.Data); n > maxV1Varlen {
				return lineErr(en.Line, "key %q: blob is %d bytes, a version 1 image holds at most %d: use --nvs-version 2", en.Key, n, maxV1Varlen)
			}
			w.singlePage(ns, typeBlob, en.Key, en.Data)
			return nil
		}
		return w.blobV2(ns, en)
	default:
		return lineErr(en.Line, "key %q: unknown kind %v", en.Key, en.Kind)
	}
	return nil
}

// stringLimit is the generator's max_blob_size check for strings, made
// before it tries to fit them in a page.
func (w *writer) stringLimit() int {
	if w.version == V1 {
		return maxV1Varlen
	}
	return maxV2String
}

// checkKey applies the generator's key rule (≤ 15 characters) plus the ones
// this package adds: ASCII only, and no Wi-Fi keys the generator expands.
func checkKey(en *Entry) error {
	what := "key"
	if en.Kind == Namespace {
		what = "namespace"
	}
	if n := utf8.RuneCountInString(en.Key); n > maxKeyLen {
		return lineErr(en.Line, "%s %q is %d characters, NVS allows at most %d: shorten it", what, en.Key, n, maxKeyLen)
	}
	for i := 0; i < len(en.Key); i++ {
		if c := en.Key[i]; c >= 0x80 || c == 0 {
			return lineErr(en.Line, "%s %q: use ASCII characters only, no NUL (Espressif's generator corrupts the entry otherwise)", what, en.Key)
		}
	}
	if en.Kind == Namespace && en.Key == "" {
		return lineErr(en.Line, "namespace row without a name: put the name in the key column")
	}
	if wifiKeys[en.Key] {
		return lineErr(en.Line, "key %q: Espressif's generator 0.2.0 adds hidden Wi-Fi entries (ap.pmk_info, sta.apinfo, sta.pmk, sta.apsw) for it; iotburn does not replicate that: use Espressif's nvs_partition_gen for Wi-Fi configuration", en.Key)
	}
	return nil
}

// openNamespace is write_namespace: a new name gets the next index and a U8
// entry in namespace 0; a known one writes nothing.
func (w *writer) openNamespace(name string, line int) error {
	w.nsCurrent = name
	if _, ok := w.nsIndex[name]; ok {
		return nil
	}
	if w.nsCount >= maxNamespaces {
		return lineErr(line, "namespace %q would be number %d, ESP-IDF allows at most %d", name, w.nsCount+1, maxNamespaces)
	}
	if w.nsIndex == nil {
		w.nsIndex = make(map[string]int)
	}
	w.nsCount++
	w.nsIndex[name] = w.nsCount
	return w.primitive(0, &Entry{Key: name, Kind: U8, Uint: uint64(w.nsCount), Line: line})
}

// primitive is write_primitive_data: one entry, value little-endian in the
// data field, unused bytes 0xFF.
func (w *writer) primitive(ns int, en *Entry) error {
	code, width := typeCode(en.Kind)
	var raw uint64
	if en.Kind.signed() {
		lo, hi := int64(-1)<<(8*width-1), int64(1)<<(8*width-1)-1
		if en.Int < lo || en.Int > hi {
			return lineErr(en.Line, "key %q: %d is out of range for %v (%d..%d)", en.Key, en.Int, en.Kind, lo, hi)
		}
		raw = uint64(en.Int)
	} else {
		hi := uint64(math.MaxUint64)
		if width < 8 {
			hi = 1<<(8*width) - 1
		}
		if en.Uint > hi {
			return lineErr(en.Line, "key %q: %d is out of range for %v (0..%d)", en.Key, en.Uint, en.Kind, hi)
		}
		raw = en.Uint
	}
	if w.entryNum >= maxEntries {
		w.newPage()
	}
	e := w.header(ns, code, 1, chunkAny, en.Key)
	for i := 0; i < width; i++ {
		e[24+i] = byte(raw >> (8 * i))
	}
	w.seal(e)
	return nil
}

// singlePage writes a string or v1 blob: header (size, 0xFFFF, data CRC)
// then the data in the following entries (write_single_page_entry). An item
// that would reach the end of the page exactly goes to the next page, as in
// the generator (">=").
func (w *writer) singlePage(ns int, typ byte, key string, data []byte) {
	dataEntries := (len(data) + entrySize - 1) / entrySize
	if w.entryNum >= maxEntries || w.entryNum+dataEntries+1 >= maxEntries {
		w.newPage()
	}
	e := w.header(ns, typ, dataEntries+1, chunkAny, key)
	binary.LittleEndian.PutUint16(e[24:], uint16(len(data)))
	e[26], e[27] = 0xFF, 0xFF
	binary.LittleEndian.PutUint32(e[28:], crc(data))
	w.seal(e)
	w.put(data, dataEntries)
}

// blobV2 is write_varlen_binary_data: the blob is cut into BLOB_DATA chunks
// that fill each page's remaining entries (a chunk may be empty), then a
// BLOB_IDX entry with the total size and the chunk count follows.
func (w *writer) blobV2(ns int, en *Entry) error {
	data := en.Data
	if uint64(len(data)) > math.MaxUint32 {
		return lineErr(en.Line, "key %q: blob of %d bytes is too large", en.Key, len(data))
	}
	if w.entryNum >= maxEntries {
		w.newPage()
	}
	offset, remaining, count := 0, len(data), 0
	for {
		tailroom := (maxEntries - w.entryNum - 1) * entrySize
		chunk := min(tailroom, remaining)
		remaining -= chunk
		dataEntries := (chunk + entrySize - 1) / entrySize
		if count > 0xFF-1 { // chunk index 255 is CHUNK_ANY; the generator crashes past it
			return lineErr(en.Line, "key %q: blob of %d bytes needs more than 255 chunks", en.Key, len(data))
		}
		e := w.header(ns, typeBlobData, dataEntries+1, count, en.Key)
		part := data[offset : offset+chunk]
		binary.LittleEndian.PutUint16(e[24:], uint16(chunk))
		e[26], e[27] = 0xFF, 0xFF
		binary.LittleEndian.PutUint32(e[28:], crc(part))
		w.seal(e)
		w.put(part, dataEntries)
		count++
		if remaining > 0 || tailroom-chunk < entrySize {
			w.newPage()
		}
		offset += chunk
		if remaining == 0 {
			break
		}
	}
	e := w.header(ns, typeBlobIdx, 1, chunkAny, en.Key)
	binary.LittleEndian.PutUint32(e[24:], uint32(len(data)))
	e[28], e[29], e[30], e[31] = byte(count), 0, 0xFF, 0xFF
	w.seal(e)
	return nil
}

// ReopenedRows returns the data rows that land in a namespace other than the
// one their CSV places them in, because of the generator's reopened-namespace
// quirk (see the package comment). Callers print a warning for them.
func ReopenedRows(entries []Entry) []Entry {
	var out []Entry
	seen := map[string]bool{}
	newest, current := "", ""
	for _, en := range entries {
		name := en.Namespace
		if en.Kind == Namespace {
			name = en.Key
		}
		if name != "" && name != current {
			current = name
			if !seen[name] {
				seen[name] = true
				newest = name
			}
		}
		if en.Kind != Namespace && current != newest {
			out = append(out, en)
		}
	}
	return out
}

// checkSize applies the generator's check_size rules.
func checkSize(size int) error {
	switch {
	case size%pageSize != 0:
		return fmt.Errorf("nvs: partition size 0x%X (%d) is not a multiple of 4096 (0x1000): use e.g. --size 0x%X", size, size, (size/pageSize+1)*pageSize)
	case size < pageSize:
		return fmt.Errorf("nvs: partition size %d is too small: the minimum is 0x3000 for a read/write partition, 0x1000 for a read-only one", size)
	}
	return nil
}

// ParseSize reads a partition size as the generator does (Python int(s, 0)):
// "0x6000", "24576", "0o60000", "0b…", with optional '_' between digits. The
// size must be a multiple of 4096 and at least 0x1000; 0x1000 and 0x2000 are
// read-only partitions (see IsReadOnly), 0x3000 is the read/write minimum.
func ParseSize(s string) (int, error) {
	neg, v, ok := pyInt(s, true)
	if !ok {
		return 0, fmt.Errorf("nvs: partition size %q is not a number: write it as 0x6000 or 24576", s)
	}
	if neg && v != 0 {
		return 0, fmt.Errorf("nvs: partition size %s is negative", strings.TrimSpace(s))
	}
	if v > math.MaxInt32 {
		return 0, fmt.Errorf("nvs: partition size %s is out of range", strings.TrimSpace(s))
	}
	if err := checkSize(int(v)); err != nil {
		return 0, err
	}
	return int(v), nil
}
