package sim

import "bytes"

// framer is implemented by firmwares whose requests are not CR/LF-ended
// lines (the ESP ROM's SLIP frames): a garbled board answers noise once per
// request it thinks it got.
type framer interface {
	endsRequest(p []byte) bool
}

// endsRequest reports whether p holds the end of a request for fw.
func endsRequest(fw firmware, p []byte) bool {
	if f, ok := fw.(framer); ok {
		return f.endsRequest(p)
	}
	return bytes.ContainsAny(p, "\r\n")
}
