package sim

import (
	"fmt"

	"github.com/iotburn/iotburn/templates/nvs"
)

// The part of ESP-IDF's NVS API the kits' firmware calls (nvs_flash.h, nvs.h:
// nvs_flash_init_partition, nvs_open_from_partition, nvs_get_str,
// nvs_get_blob, nvs_set_str, nvs_set_blob), played over the board's flash
// file with the project's NVS reader and generator (templates/nvs).
//
// The error codes are esp_err.h's and nvs.h's: ESP_ERR_NOT_FOUND 0x105 (no
// partition of that label), ESP_ERR_NVS_NOT_FOUND 0x1102 (no such
// namespace opened read-only, or no such key), ESP_ERR_NVS_INVALID_LENGTH
// 0x110c (the value is longer than the caller's buffer).
//
// Choices where the sources were not followed to the byte:
//   - A partition the reader finds damaged fails nvs_flash_init_partition
//     with ESP_ERR_NVS_NO_FREE_PAGES 0x110d; the real library would erase
//     the damaged pages and go on. [NOT FROM A SOURCE: harsher]
//   - A write rewrites the whole partition as the generator lays it out (the
//     items read, the new one added or replaced), where the real library
//     appends the item to its active page. The values read back are the
//     same; the bytes are not. [NOT FROM A SOURCE]
const (
	espErrNotFound       = 0x105
	espErrNVSNotFound    = 0x1102
	espErrNVSInvalidLen  = 0x110c
	espErrNVSNoFreePages = 0x110d
	espFail              = -1
)

// espErrName is esp_err_to_name for the codes the simulator can return.
func espErrName(code int) string {
	switch code {
	case espErrNotFound:
		return "ESP_ERR_NOT_FOUND"
	case espErrNVSNotFound:
		return "ESP_ERR_NVS_NOT_FOUND"
	case espErrNVSInvalidLen:
		return "ESP_ERR_NVS_INVALID_LENGTH"
	case espErrNVSNoFreePages:
		return "ESP_ERR_NVS_NO_FREE_PAGES"
	case espFail:
		return "ESP_FAIL"
	}
	return fmt.Sprintf("ERROR 0x%x", code)
}

// espErrHex is how the kits print an esp_err_t with %x (0xffffffff for ESP_FAIL).
func espErrHex(code int) string { return fmt.Sprintf("%x", uint32(int32(code))) }

// nvsPart is one NVS partition as the app sees it after nvs_flash_init_partition.
type nvsPart struct {
	c     *esp32Chip
	part  espPartition
	items []nvs.Item
}

// nvsInit is nvs_flash_init_partition(label).
func (c *esp32Chip) nvsInit(parts []espPartition, label string) (*nvsPart, int) {
	p, ok := findPartition(parts, label)
	if !ok || p.typ != partTypeData || p.subtype != partSubDataNVS {
		return nil, espErrNotFound
	}
	img, err := c.readFile(p.offset, p.size)
	if err != nil {
		return nil, espErrNVSNoFreePages
	}
	items, err := nvs.Read(img)
	if err != nil {
		return nil, espErrNVSNoFreePages
	}
	return &nvsPart{c: c, part: p, items: items}, 0
}

// hasNamespace is what nvs_open_from_partition(..., NVS_READONLY, ...) needs.
func (n *nvsPart) hasNamespace(ns string) bool {
	for _, it := range n.items {
		if it.Namespace == ns {
			return true
		}
	}
	return false
}

func (n *nvsPart) find(ns, key string, kind nvs.Kind) (nvs.Item, bool) {
	for _, it := range n.items {
		if it.Namespace == ns && it.Key == key && it.Kind == kind {
			return it, true
		}
	}
	return nvs.Item{}, false
}

// getStr is nvs_get_str into a buffer of bufLen bytes (0: the length query,
// any length fits).
func (n *nvsPart) getStr(ns, key string, bufLen int) (string, int) {
	if !n.hasNamespace(ns) {
		return "", espErrNVSNotFound
	}
	it, ok := n.find(ns, key, nvs.String)
	if !ok {
		return "", espErrNVSNotFound
	}
	s := it.Value.(string)
	if bufLen > 0 && len(s)+1 > bufLen {
		return "", espErrNVSInvalidLen
	}
	return s, 0
}

// getBlob is nvs_get_blob.
func (n *nvsPart) getBlob(ns, key string, bufLen int) ([]byte, int) {
	if !n.hasNamespace(ns) {
		return nil, espErrNVSNotFound
	}
	it, ok := n.find(ns, key, nvs.Blob)
	if !ok {
		return nil, espErrNVSNotFound
	}
	b := it.Value.([]byte)
	if bufLen > 0 && len(b) > bufLen {
		return nil, espErrNVSInvalidLen
	}
	return b, 0
}

// set is nvs_set_str / nvs_set_blob (nvs_open READWRITE creates the
// namespace) followed by nvs_commit: the partition is rewritten (see the
// choices above) and made durable.
func (n *nvsPart) set(ns, key string, kind nvs.Kind, v any) int {
	var entries []nvs.Entry
	replaced := false
	for _, it := range n.items {
		if it.Namespace == ns && it.Key == key {
			it.Kind, it.Value, replaced = kind, v, true
		}
		entries = append(entries, entryOf(it))
	}
	if !replaced {
		entries = append(entries, entryOf(nvs.Item{Namespace: ns, Key: key, Kind: kind, Value: v}))
	}
	img, err := nvs.Generate(entries, int(n.part.size), nvs.V2)
	if err != nil {
		return espErrNVSNoFreePages
	}
	if err := updateFlashFile(n.c.h.flashPath(), int(n.part.offset), len(img), func(b []byte) { copy(b, img) }); err != nil {
		return espFail
	}
	items, err := nvs.Read(img)
	if err != nil {
		return espFail
	}
	n.items = items
	return 0
}

func entryOf(it nvs.Item) nvs.Entry {
	e := nvs.Entry{Namespace: it.Namespace, Key: it.Key, Kind: it.Kind}
	switch v := it.Value.(type) {
	case string:
		e.Str = v
	case []byte:
		e.Data = v
	case uint64:
		e.Uint = v
	case int64:
		e.Int = v
	}
	return e
}
