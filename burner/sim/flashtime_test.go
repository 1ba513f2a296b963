package sim

import (
	"testing"
	"time"
)

// Worked by hand from the W25Q32JV's typical times (tSE 45 ms, tBE2 150 ms,
// tPP 0.4 ms).
func TestESP32FlashFloor(t *testing.T) {
	for _, tc := range []struct {
		off, n uint32
		want   time.Duration
	}{
		{0x10000, 1 << 20, 16*150*time.Millisecond + 4096*400*time.Microsecond},                    // 16 blocks, 4096 pages
		{0x1000, 0x6000, 6*45*time.Millisecond + 96*400*time.Microsecond},                          // 6 sectors, 96 pages
		{0x8000, 0xC00, 45*time.Millisecond + 12*400*time.Microsecond},                             // 1 sector, 12 pages
		{0xF000, 0x12000, 2*45*time.Millisecond + 150*time.Millisecond + 288*400*time.Microsecond}, // 0xF000 and 0x20000 by sector, 0x10000 as a block
		{0x9000, 0, 0},
	} {
		if got := ESP32FlashFloor(tc.off, tc.n); got != tc.want {
			t.Errorf("ESP32FlashFloor(%#x, %#x) = %v, want %v", tc.off, tc.n, got, tc.want)
		}
	}
}
