package nvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Entry states in the page bitmap (ESP-IDF nvs_page.hpp): 2 bits an entry.
const (
	entryEmpty   = 0b11
	entryWritten = 0b10
	entryErased  = 0b00
)

// CorruptError says where an image is damaged and how.
type CorruptError struct {
	Offset int // byte offset in the image
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("nvs: corrupt image at offset 0x%X: %s", e.Offset, e.Reason)
}

func corrupt(off int, format string, args ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Read parses an NVS partition image back into its items, in the order they
// were written (a v2 blob at its index entry). It checks what ESP-IDF checks
// and a little more: every page header CRC, every item header CRC, every
// string and blob data CRC, the entry bitmap against the entries, spans, type
// codes, namespaces and blob chunk sets. A damaged image gives a
// *CorruptError naming the byte offset. Blank pages (all 0xFF) are skipped;
// erased entries are skipped. Encrypted images are not supported.
func Read(img []byte) ([]Item, error) {
	if len(img) == 0 || len(img)%pageSize != 0 {
		return nil, corrupt(len(img), "image is %d bytes, not a whole number of 4096-byte pages", len(img))
	}
	r := reader{namespaces: map[byte]string{}, chunks: map[chunkKey]chunk{}}
	for off := 0; off < len(img); off += pageSize {
		if err := r.page(img[off:off+pageSize], off); err != nil {
			return nil, err
		}
	}
	if len(r.chunks) > 0 {
		// Pick the earliest orphan so the error does not depend on map order.
		first := -1
		for _, c := range r.chunks {
			if first < 0 || c.off < first {
				first = c.off
			}
		}
		return nil, corrupt(first, "blob data chunk without a blob index")
	}
	return r.items, nil
}

type chunkKey struct {
	ns    byte
	key   string
	index byte
}

type chunk struct {
	data []byte
	off  int
}

type reader struct {
	namespaces map[byte]string
	chunks     map[chunkKey]chunk
	items      []Item
}

func (r *reader) page(p []byte, base int) error {
	state := binary.LittleEndian.Uint32(p)
	if state == stateEmpty {
		if bytes.Equal(p, blankPage) {
			return nil
		}
		return corrupt(base, "page is marked uninitialised but is not blank")
	}
	if state != stateActive && state != stateFull {
		return corrupt(base, "page state 0x%08X is not ACTIVE (0xFFFFFFFE) or FULL (0xFFFFFFFC)", state)
	}
	if got, want := binary.LittleEndian.Uint32(p[28:]), crc(p[4:28]); got != want {
		return corrupt(base, "page header CRC is 0x%08X, the header's bytes give 0x%08X", got, want)
	}
	if v := p[8]; v != versionByte1 && v != versionByte2 {
		return corrupt(base+8, "page version byte 0x%02X is neither 0xFF (v1) nor 0xFE (v2)", v)
	}
	bitmap := p[32:64]
	stateOf := func(i int) byte { return bitmap[i/4] >> (2 * (i % 4)) & 3 }
	for i := 0; i < maxEntries; {
		eoff := firstEntry + i*entrySize
		e := p[eoff : eoff+entrySize]
		switch stateOf(i) {
		case entryEmpty:
			if !bytes.Equal(e, blankPage[:entrySize]) {
				return corrupt(base+eoff, "entry %d is marked empty in the page bitmap but holds data", i)
			}
			i++
			continue
		case entryErased:
			i++
			continue
		case entryWritten:
		default:
			return corrupt(base+32+i/4, "entry %d has the invalid bitmap state 0b01", i)
		}
		if got, want := binary.LittleEndian.Uint32(e[4:]), entryCRC(e); got != want {
			return corrupt(base+eoff, "entry %d header CRC is 0x%08X, its bytes give 0x%08X", i, got, want)
		}
		span := int(e[2])
		if span < 1 || i+span > maxEntries {
			return corrupt(base+eoff+2, "entry %d has span %d, beyond the page", i, span)
		}
		for j := i + 1; j < i+span; j++ {
			if stateOf(j) != entryWritten {
				return corrupt(base+32+j/4, "entry %d belongs to the item at entry %d but is not marked written in the page bitmap", j, i)
			}
		}
		if err := r.item(p, base, i, e); err != nil {
			return err
		}
		i += span
	}
	return nil
}

// item decodes the item whose header is entry i of the page.
func (r *reader) item(p []byte, base, i int, e []byte) error {
	eoff := base + firstEntry + i*entrySize
	ns, typ, span, chunkIdx := e[0], e[1], int(e[2]), e[3]
	keyField := e[8:24]
	n := bytes.IndexByte(keyField, 0)
	if n < 0 {
		return corrupt(eoff+8, "entry %d key is not NUL-terminated", i)
	}
	key := string(keyField[:n])
	// varData returns the size-checked, CRC-checked data of a string or blob entry.
	varData := func() ([]byte, error) {
		size := int(binary.LittleEndian.Uint16(e[24:]))
		if need := (size + entrySize - 1) / entrySize; need != span-1 {
			return nil, corrupt(eoff+24, "entry %d holds %d bytes but spans %d entries", i, size, span)
		}
		start := firstEntry + (i+1)*entrySize
		data := p[start : start+size]
		if got, want := binary.LittleEndian.Uint32(e[28:]), crc(data); got != want {
			return nil, corrupt(base+start, "data of %q (entry %d) has CRC 0x%08X, the header says 0x%08X", key, i, want, got)
		}
		return bytes.Clone(data), nil // non-nil even when empty
	}
	primitive := func(k Kind) error {
		if span != 1 {
			return corrupt(eoff+2, "entry %d: a %v has span %d, want 1", i, k, span)
		}
		_, width := typeCode(k)
		var raw uint64
		for b := 0; b < width; b++ {
			raw |= uint64(e[24+b]) << (8 * b)
		}
		it := Item{Namespace: r.namespaces[ns], Key: key, Kind: k}
		if k.signed() {
			shift := 64 - 8*width
			it.Value = int64(raw<<shift) >> shift // sign-extend
		} else {
			it.Value = raw
		}
		return r.add(eoff, ns, it)
	}
	switch typ {
	case typeU8:
		if ns == 0 { // namespace definition: key = name, value = index
			idx := e[24]
			if idx == 0 || idx == 0xFF {
				return corrupt(eoff+24, "namespace %q has the invalid index %d", key, idx)
			}
			r.namespaces[idx] = key
			return nil
		}
		return primitive(U8)
	case typeI8:
		return primitive(I8)
	case typeU16:
		return primitive(U16)
	case typeI16:
		return primitive(I16)
	case typeU32:
		return primitive(U32)
	case typeI32:
		return primitive(I32)
	case typeU64:
		return primitive(U64)
	case typeI64:
		return primitive(I64)
	case typeSZ:
		data, err := varData()
		if err != nil {
			return err
		}
		// The image stores the NUL; the value is the text before it.
		if k := bytes.IndexByte(data, 0); k >= 0 {
			data = data[:k]
		}
		return r.add(eoff, ns, Item{Namespace: r.namespaces[ns], Key: key, Kind: String, Value: string(data)})
	case typeBlob:
		data, err := varData()
		if err != nil {
			return err
		}
		return r.add(eoff, ns, Item{Namespace: r.namespaces[ns], Key: key, Kind: Blob, Value: data})
	case typeBlobData:
		data, err := varData()
		if err != nil {
			return err
		}
		ck := chunkKey{ns, key, chunkIdx}
		if _, dup := r.chunks[ck]; dup {
			return corrupt(eoff, "blob %q chunk %d appears twice", key, chunkIdx)
		}
		r.chunks[ck] = chunk{data: data, off: eoff}
		return nil
	case typeBlobIdx:
		if span != 1 {
			return corrupt(eoff+2, "entry %d: a blob index has span %d, want 1", i, span)
		}
		total := int(binary.LittleEndian.Uint32(e[24:]))
		count, start := int(e[28]), int(e[29])
		if start+count > 0xFF {
			return corrupt(eoff+28, "blob index of %q: chunks %d..%d overflow the chunk index", key, start, start+count-1)
		}
		var data []byte
		for c := start; c < start+count; c++ {
			ck := chunkKey{ns, key, byte(c)}
			ch, ok := r.chunks[ck]
			if !ok {
				return corrupt(eoff, "blob index of %q names chunk %d, which is not before it in the image", key, c)
			}
			delete(r.chunks, ck)
			data = append(data, ch.data...)
		}
		if len(data) != total {
			return corrupt(eoff+24, "blob index of %q says %d bytes, its chunks hold %d", key, total, len(data))
		}
		if data == nil {
			data = []byte{}
		}
		return r.add(eoff, ns, Item{Namespace: r.namespaces[ns], Key: key, Kind: Blob, Value: data})
	}
	return corrupt(eoff+1, "entry %d has the unknown type 0x%02X", i, typ)
}

func (r *reader) add(off int, ns byte, it Item) error {
	if ns == 0xFF {
		return corrupt(off, "item %q has the reserved namespace index 255", it.Key)
	}
	if _, ok := r.namespaces[ns]; !ok {
		return corrupt(off, "item %q uses namespace index %d, which no namespace entry before it defines", it.Key, ns)
	}
	r.items = append(r.items, it)
	return nil
}
