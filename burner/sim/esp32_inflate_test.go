package sim

import (
	"bytes"
	"compress/zlib"
	"math/rand/v2"
	"testing"
)

// deflated compresses b with Go's zlib at level (the test's reference
// encoder; the decoder under test is the simulator's own).
func deflated(t testing.TB, b []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zlib.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// halfCompressible is n bytes, half random, half repeated text: about 2:1.
func halfCompressible(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]byte, 0, n)
	text := []byte("ESP32 simulated flash, half of it compresses well. ")
	for len(out) < n {
		if r.IntN(2) == 0 {
			for range 512 {
				out = append(out, byte(r.Uint32()))
			}
		} else {
			for i := range 512 {
				out = append(out, text[i%len(text)])
			}
		}
	}
	return out[:n]
}

// feed runs the inflater over z in pieces of random size into outputs of
// random size, as the ROM and the stub feed it, and returns the output.
func feed(t *testing.T, z []byte, r *rand.Rand, maxIn, maxOut int) ([]byte, inflateStatus) {
	t.Helper()
	inf := newInflater()
	var got []byte
	st := inflateNeedsInput
	for len(z) > 0 || st == inflateHasOutput {
		n := min(len(z), 1+r.IntN(maxIn))
		in := z[:n]
		for {
			out := make([]byte, 1+r.IntN(maxOut))
			nIn, nOut, s := inf.inflate(in, out, true)
			got = append(got, out[:nOut]...)
			in, st = in[nIn:], s
			if st != inflateHasOutput {
				break
			}
		}
		if st < 0 || st == inflateDone {
			return got, st
		}
		if st == inflateNeedsInput && len(in) != 0 {
			t.Fatalf("needs more input but left %d bytes unconsumed", len(in))
		}
		z = z[n:]
	}
	return got, st
}

func TestInflaterMatchesZlib(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct {
		name          string
		data          []byte
		level         int
		maxIn, maxOut int
	}{
		{"empty", nil, 9, 4, 4},
		{"stored blocks", halfCompressible(100_000, 1), zlib.NoCompression, 5000, 3000},
		{"fixed codes", []byte("hello, hello, hello world"), zlib.BestSpeed, 1, 1},
		{"dynamic, byte by byte", halfCompressible(70_000, 2), 9, 1, 7},
		{"dynamic, stub-sized blocks", halfCompressible(1<<20, 3), 9, 0x4000, 32768},
		{"dynamic, ROM-sized blocks", halfCompressible(300_000, 4), 9, 0x400, 1 << 20},
		{"all 0xFF (long matches)", bytes.Repeat([]byte{0xFF}, 200_000), 9, 100, 50_000},
		{"huffman only", halfCompressible(100_000, 5), zlib.HuffmanOnly, 333, 999},
	} {
		seed := r.Uint64()
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z := deflated(t, tc.data, tc.level)
			got, st := feed(t, z, rand.New(rand.NewPCG(seed, 1)), tc.maxIn, tc.maxOut)
			if st != inflateDone {
				t.Fatalf("status %d, want done", st)
			}
			if !bytes.Equal(got, tc.data) {
				t.Fatalf("inflated %d bytes that differ from the %d deflated", len(got), len(tc.data))
			}
		})
	}
}

func TestInflaterRefuses(t *testing.T) {
	good := deflated(t, halfCompressible(10_000, 9), 9)
	flip := func(i int, bit byte) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= bit
		return b
	}
	for _, tc := range []struct {
		name    string
		z       []byte
		hasMore bool
		want    inflateStatus
	}{
		{"not deflate (CM 7)", []byte{0x77, 0x01}, true, inflateFailed},
		{"bad FCHECK", []byte{0x78, 0xDB}, true, inflateFailed},
		{"preset dictionary", []byte{0x78, 0xBB}, true, inflateFailed},
		{"window over 32 KB", []byte{0x88, 0x98}, true, inflateFailed},
		{"block type 3", []byte{0x78, 0x9C, 0x07}, true, inflateFailed},
		{"stored LEN/NLEN mismatch", []byte{0x78, 0x01, 0x01, 0x05, 0x00, 0xFA, 0xFE}, true, inflateFailed},
		{"wrong Adler-32", flip(len(good)-1, 1), true, inflateAdlerMismatch},
		{"truncated, more may come", good[:len(good)/2], true, inflateNeedsInput},
		{"truncated, no more input", good[:len(good)/2], false, inflateCannotProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inf := newInflater()
			out := make([]byte, 1<<20)
			_, _, st := inf.inflate(tc.z, out, tc.hasMore)
			if st != tc.want {
				t.Fatalf("status %d, want %d", st, tc.want)
			}
		})
	}
}

// A distance before the start of the output is refused (tinfl: "dist >
// dist_from_out_buf_start" is a failure with a non-wrapping buffer; with the
// stub's wrapping one it would read stale bytes: refusing is the harsher).
func TestInflaterRefusesDistanceTooFar(t *testing.T) {
	// A fixed-code block by hand: literal 'a', then length 3 at distance
	// code dcode, end of block (no Adler-32 needed to see the failure).
	stream := func(dcode uint32) []byte {
		var w bitWriter
		w.bits(0x78, 8)
		w.bits(0x01, 8)
		w.bits(1, 1)       // BFINAL
		w.bits(1, 2)       // BTYPE 01, fixed codes
		w.rev(0x30+'a', 8) // literal: 00110000 + value, 8 bits
		w.rev(1, 7)        // length code 257 = 3: 0000001
		w.rev(dcode, 5)    // distance code
		w.rev(0, 7)        // 256, end of block
		return w.b
	}
	out := make([]byte, 100)
	// The control: distance 1 copies the 'a' three times.
	_, n, st := newInflater().inflate(stream(0), out, true)
	if st != inflateNeedsInput || string(out[:n]) != "aaaa" {
		t.Fatalf("control stream: status %d, output %q", st, out[:n])
	}
	// Distance 2, with one byte of output so far.
	if _, _, st := newInflater().inflate(stream(1), out, true); st != inflateFailed {
		t.Fatalf("status %d, want failed", st)
	}
}

type bitWriter struct {
	b []byte
	n uint
}

func (w *bitWriter) bits(v uint32, n uint) {
	for i := range n {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>i&1) << (w.n % 8)
		w.n++
	}
}

// rev writes a Huffman code, most significant bit first.
func (w *bitWriter) rev(v uint32, n uint) {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(v>>uint(i)&1, 1)
	}
}
