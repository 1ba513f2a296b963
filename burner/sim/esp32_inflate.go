package sim

// inflater is a zlib (RFC 1950) / deflate (RFC 1951) decoder fed in pieces,
// the way the ESP32's ROM inflater (miniz's tinfl, called by the ROM's
// FLASH_DEFL_DATA and by the flasher stub's handle_flash_deflated_data) is
// fed: one FLASH_DEFL_DATA block at a time, into an output buffer of the
// caller's size, resuming where it stopped. compress/flate cannot do that (it
// pulls its input and holds up to 32 KB of output until its window fills), so
// this one is written here from the RFCs.
//
// Its answers follow tinfl_decompress's statuses (miniz.h tinfl_status) as
// far as the callers look at them: negative is a failure, 0 done, 1 needs
// more input (everything given was consumed), 2 has more output (the output
// buffer is full). Like tinfl with TINFL_FLAG_PARSE_ZLIB_HEADER, it checks the
// zlib header (CM 8, no preset dictionary, FCHECK, window at most 32 KB) and
// the Adler-32 trailer.
type inflater struct {
	carry []byte // input of a step that ran out, kept for the next call
	data  []byte // carry + this call's input
	pos   int    // next byte of data to load into bits
	bits  uint64
	nbits uint

	state      int
	last       bool // the block being decoded has BFINAL set
	storedLeft int
	lit, dist  huffman
	copyLen    int
	copyDist   int

	window [1 << 15]byte
	total  int    // output bytes so far
	s1, s2 uint32 // the Adler-32 of the output so far
}

type inflateStatus int

const (
	inflateCannotProgress inflateStatus = -4 // TINFL_STATUS_FAILED_CANNOT_MAKE_PROGRESS
	inflateAdlerMismatch  inflateStatus = -2 // TINFL_STATUS_ADLER32_MISMATCH
	inflateFailed         inflateStatus = -1 // TINFL_STATUS_FAILED
	inflateDone           inflateStatus = 0  // TINFL_STATUS_DONE
	inflateNeedsInput     inflateStatus = 1  // TINFL_STATUS_NEEDS_MORE_INPUT
	inflateHasOutput      inflateStatus = 2  // TINFL_STATUS_HAS_MORE_OUTPUT
)

const (
	zHeader = iota
	zBlock
	zStoredLen
	zStored
	zDynamic
	zCodes
	zTrailer
	zDone
	zFailed
)

func newInflater() *inflater { return &inflater{s1: 1} }

// inflate decodes from in into out. hasMore says more input may follow
// (TINFL_FLAG_HAS_MORE_INPUT): without it, running out of input is a failure
// (inflateCannotProgress). nIn is how many bytes of in were consumed: all of
// them when it needs more input.
func (z *inflater) inflate(in, out []byte, hasMore bool) (nIn, nOut int, st inflateStatus) {
	carried := len(z.carry)
	if carried == 0 {
		z.data = in
	} else {
		z.data = append(z.carry, in...)
	}
	z.pos = 0
	st = z.run(out, &nOut)
	if st == inflateNeedsInput && !hasMore {
		st = inflateCannotProgress
	}
	switch {
	case st == inflateNeedsInput:
		z.carry = append([]byte(nil), z.data[z.pos:]...)
		nIn = len(in)
	case z.pos >= carried:
		z.carry = nil
		nIn = z.pos - carried
	default:
		z.carry = append([]byte(nil), z.data[z.pos:carried]...)
	}
	z.data = nil
	return nIn, nOut, st
}

// need makes n bits available; false: the input ran out.
func (z *inflater) need(n uint) bool {
	for z.nbits < n {
		if z.pos >= len(z.data) {
			return false
		}
		z.bits |= uint64(z.data[z.pos]) << z.nbits
		z.pos++
		z.nbits += 8
	}
	return true
}

func (z *inflater) take(n uint) uint32 {
	v := uint32(z.bits & (1<<n - 1))
	z.bits >>= n
	z.nbits -= n
	return v
}

// getBits reads n ≤ 32 bits, LSB first; false: the input ran out.
func (z *inflater) getBits(n uint) (uint32, bool) {
	if !z.need(n) {
		return 0, false
	}
	return z.take(n), true
}

// mark and back let a step that runs out of input start again later.
type inflateMark struct {
	pos   int
	bits  uint64
	nbits uint
}

func (z *inflater) mark() inflateMark   { return inflateMark{z.pos, z.bits, z.nbits} }
func (z *inflater) back(m inflateMark)  { z.pos, z.bits, z.nbits = m.pos, m.bits, m.nbits }
func (z *inflater) alignToByte()        { z.take(z.nbits % 8) }
func (z *inflater) fail() inflateStatus { z.state = zFailed; return inflateFailed }

// emit puts one output byte in out and in the window.
func (z *inflater) emit(out []byte, c byte) {
	out[0] = c
	z.window[z.total&(len(z.window)-1)] = c
	z.total++
	z.s1 = (z.s1 + uint32(c)) % 65521
	z.s2 = (z.s2 + z.s1) % 65521
}

func (z *inflater) run(out []byte, nOut *int) inflateStatus {
	for {
		switch z.state {
		case zHeader:
			m := z.mark()
			h, ok := z.getBits(16)
			if !ok {
				z.back(m)
				return inflateNeedsInput
			}
			cmf, flg := h&0xFF, h>>8
			if (cmf*256+flg)%31 != 0 || flg&0x20 != 0 || cmf&0x0F != 8 || cmf>>4 > 7 {
				return z.fail()
			}
			z.state = zBlock
		case zBlock:
			m := z.mark()
			h, ok := z.getBits(3)
			if !ok {
				z.back(m)
				return inflateNeedsInput
			}
			z.last = h&1 != 0
			switch h >> 1 {
			case 0:
				z.alignToByte()
				z.state = zStoredLen
			case 1:
				z.lit, z.dist = fixedHuffman()
				z.state = zCodes
			case 2:
				z.state = zDynamic
			default:
				return z.fail()
			}
		case zStoredLen:
			m := z.mark()
			v, ok := z.getBits(32)
			if !ok {
				z.back(m)
				return inflateNeedsInput
			}
			if uint16(v) != ^uint16(v>>16) {
				return z.fail()
			}
			z.storedLeft = int(v & 0xFFFF)
			z.state = zStored
		case zStored:
			for z.storedLeft > 0 {
				if *nOut == len(out) {
					return inflateHasOutput
				}
				c, ok := z.getBits(8)
				if !ok {
					return inflateNeedsInput
				}
				z.emit(out[*nOut:], byte(c))
				*nOut++
				z.storedLeft--
			}
			z.endOfBlock()
		case zDynamic:
			m := z.mark()
			ok, bad := z.readDynamic()
			if bad {
				return z.fail()
			}
			if !ok {
				z.back(m)
				return inflateNeedsInput
			}
			z.state = zCodes
		case zCodes:
			if st, stop := z.codes(out, nOut); stop {
				return st
			}
		case zTrailer:
			m := z.mark()
			z.alignToByte()
			v, ok := z.getBits(32)
			if !ok {
				z.back(m)
				return inflateNeedsInput
			}
			// The Adler-32 is stored most significant byte first.
			got := v>>24 | v>>8&0xFF00 | v<<8&0xFF0000 | v<<24
			if got != z.s2<<16|z.s1 {
				z.state = zFailed
				return inflateAdlerMismatch
			}
			z.state = zDone
		case zDone:
			return inflateDone
		default:
			return inflateFailed
		}
	}
}

func (z *inflater) endOfBlock() {
	if z.last {
		z.state = zTrailer
	} else {
		z.state = zBlock
	}
}

// codes decodes literal/length and distance codes until the block ends (it
// then returns stop false), the output is full or the input runs out.
func (z *inflater) codes(out []byte, nOut *int) (inflateStatus, bool) {
	for {
		for z.copyLen > 0 {
			if *nOut == len(out) {
				return inflateHasOutput, true
			}
			z.emit(out[*nOut:], z.window[(z.total-z.copyDist)&(len(z.window)-1)])
			*nOut++
			z.copyLen--
		}
		m := z.mark()
		sym, ok := z.lit.decode(z)
		if !ok {
			z.back(m)
			return inflateNeedsInput, true
		}
		switch {
		case sym < 0:
			return z.fail(), true
		case sym < 256:
			if *nOut == len(out) {
				z.back(m)
				return inflateHasOutput, true
			}
			z.emit(out[*nOut:], byte(sym))
			*nOut++
			continue
		case sym == 256:
			z.endOfBlock()
			return 0, false
		case sym > 285:
			return z.fail(), true
		}
		length, ok := z.extra(lengthBase[sym-257], lengthExtra[sym-257])
		if !ok {
			z.back(m)
			return inflateNeedsInput, true
		}
		dsym, ok := z.dist.decode(z)
		if !ok {
			z.back(m)
			return inflateNeedsInput, true
		}
		if dsym < 0 || dsym > 29 {
			return z.fail(), true
		}
		dist, ok := z.extra(distBase[dsym], distExtra[dsym])
		if !ok {
			z.back(m)
			return inflateNeedsInput, true
		}
		if dist > z.total {
			return z.fail(), true // further back than the output so far
		}
		z.copyLen, z.copyDist = length, dist
	}
}

func (z *inflater) extra(base, bits int) (int, bool) {
	v, ok := z.getBits(uint(bits))
	return base + int(v), ok
}

// readDynamic reads a dynamic block's code tables (RFC 1951 §3.2.7). ok false:
// the input ran out (the caller rewinds); bad: the tables are invalid.
func (z *inflater) readDynamic() (ok, bad bool) {
	h, ok := z.getBits(14)
	if !ok {
		return false, false
	}
	nlit, ndist, nclen := int(h&0x1F)+257, int(h>>5&0x1F)+1, int(h>>10)+4
	if nlit > 286 || ndist > 30 {
		return false, true
	}
	var clen [19]uint8
	for i := range nclen {
		v, ok := z.getBits(3)
		if !ok {
			return false, false
		}
		clen[codeLengthOrder[i]] = uint8(v)
	}
	var cl huffman
	if !cl.build(clen[:]) {
		return false, true
	}
	lengths := make([]uint8, nlit+ndist)
	for i := 0; i < len(lengths); {
		sym, ok := cl.decode(z)
		if !ok {
			return false, false
		}
		var rep, bits, base int
		var val uint8
		switch {
		case sym < 0:
			return false, true
		case sym < 16:
			lengths[i] = uint8(sym)
			i++
			continue
		case sym == 16:
			if i == 0 {
				return false, true
			}
			val, bits, base = lengths[i-1], 2, 3
		case sym == 17:
			bits, base = 3, 3
		default:
			bits, base = 7, 11
		}
		rep, ok = z.extra(base, bits)
		if !ok {
			return false, false
		}
		if i+rep > len(lengths) {
			return false, true
		}
		for ; rep > 0; rep-- {
			lengths[i] = val
			i++
		}
	}
	if lengths[256] == 0 { // no end-of-block code
		return false, true
	}
	if !z.lit.build(lengths[:nlit]) || !z.dist.build(lengths[nlit:]) {
		return false, true
	}
	return true, false
}

// huffman is a canonical Huffman code (RFC 1951 §3.2.2) decoded one bit at a
// time: count[l] codes of length l, symbols in code order.
type huffman struct {
	count  [16]uint16
	symbol []uint16
}

// build makes the code from code lengths; false if the lengths over-subscribe
// the code, or leave it incomplete with more than one symbol (which tinfl
// refuses too; a single code, as a distance tree may have, is fine).
func (h *huffman) build(lengths []uint8) bool {
	h.count = [16]uint16{}
	for _, l := range lengths {
		h.count[l]++
	}
	used := len(lengths) - int(h.count[0])
	left := 1
	for l := 1; l < 16; l++ {
		left = left<<1 - int(h.count[l])
		if left < 0 {
			return false
		}
	}
	if left > 0 && used > 1 {
		return false
	}
	var offs [16]uint16
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + h.count[l]
	}
	h.symbol = make([]uint16, used)
	for s, l := range lengths {
		if l != 0 {
			h.symbol[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	return true
}

// decode reads one symbol: -1 for a code the tables do not have, ok false if
// the input ran out.
func (h *huffman) decode(z *inflater) (int, bool) {
	if z.need(15) { // the usual case: decode from the bit buffer at once
		bits := z.bits
		code, first, index := 0, 0, 0
		for l := 1; l < 16; l++ {
			code |= int(bits & 1)
			bits >>= 1
			n := int(h.count[l])
			if code-first < n {
				z.take(uint(l))
				return int(h.symbol[index+code-first]), true
			}
			index += n
			first = (first + n) << 1
			code <<= 1
		}
		return -1, true
	}
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, ok := z.getBits(1)
		if !ok {
			return 0, false
		}
		code |= int(b)
		n := int(h.count[l])
		if code-first < n {
			return int(h.symbol[index+code-first]), true
		}
		index += n
		first = (first + n) << 1
		code <<= 1
	}
	return -1, true
}

// The fixed codes (RFC 1951 §3.2.6); distance codes 30 and 31 exist in the
// code but are invalid, as lengths 286 and 287 are.
var fixedLit, fixedDist huffman

func fixedHuffman() (huffman, huffman) { return fixedLit, fixedDist }

// RFC 1951 §3.2.5 and §3.2.7.
var (
	codeLengthOrder = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
	lengthBase      [29]int
	lengthExtra     [29]int
	distBase        [30]int
	distExtra       [30]int
)

func init() {
	base := 3
	for i := range 28 {
		e := 0
		if i >= 8 {
			e = i/4 - 1
		}
		lengthBase[i], lengthExtra[i] = base, e
		base += 1 << e
	}
	lengthBase[28], lengthExtra[28] = 258, 0
	base = 1
	for i := range 30 {
		e := 0
		if i >= 4 {
			e = i/2 - 1
		}
		distBase[i], distExtra[i] = base, e
		base += 1 << e
	}
	var l [288]uint8
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit.build(l[:])
	var d [32]uint8
	for i := range d {
		d[i] = 5
	}
	fixedDist.build(d[:])
}
