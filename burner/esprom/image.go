package esprom

import (
	"bytes"
	"compress/zlib"
	"crypto/md5"
)

// Image is one region made ready once, for as many boards as write it: the
// bytes padded with 0xFF to a multiple of 4 (the ROM writes whole words), their
// MD5 for SPI_FLASH_MD5, and, when compressed, the zlib stream (level 9, as
// esptool's write_flash -z) that FLASH_DEFL_DATA carries. Sixteen boards
// sharing the firmware share its Image: it is deflated once per batch, not
// once per board. An Image is read-only after NewImage and safe to share
// between goroutines.
type Image struct {
	Name   string
	Offset uint32
	size   int    // before padding, for progress
	data   []byte // padded
	sum    [16]byte
	z      []byte // nil: written uncompressed
}

// NewImage prepares data for offset.
func NewImage(name string, offset uint32, data []byte, compress bool) *Image {
	img := &Image{Name: name, Offset: offset, size: len(data), data: data}
	if pad := (4 - len(data)%4) % 4; pad > 0 {
		img.data = append(append([]byte(nil), data...), bytes.Repeat([]byte{0xFF}, pad)...)
	}
	img.sum = md5.Sum(img.data)
	if compress && len(img.data) > 0 {
		var zb bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&zb, zlib.BestCompression)
		zw.Write(img.data)
		zw.Close()
		img.z = zb.Bytes()
	}
	return img
}

// Size is the image's length before padding.
func (img *Image) Size() int { return img.size }

// WireBytes is what goes over the line for the image's data: the deflated
// stream, or the padded image in whole 1 KB blocks.
func (img *Image) WireBytes() int {
	if img.z != nil {
		return len(img.z)
	}
	return (len(img.data) + blockSize - 1) / blockSize * blockSize
}
