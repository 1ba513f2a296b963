package at

import "strings"

// Limits of the firmware's buffers (PRODUCT_KEY_LEN 20, DEVICE_NAME_LEN 32,
// DEVICE_SECRET_LEN 64, PRODUCT_SECRET_LEN 64; reference/aliyun.md §6): a
// read-back longer than these is not something the board can hold.
const (
	aliMaxPK = 20
	aliMaxDN = 32
	aliMaxDS = 64
	aliMaxPS = 64
)

// parseIDMAU reads the body of "+IDMAU:<pk>,<dn>,<ds>,<ps>". The handler
// prints the values bare with no escaping, so a value holding ',' cannot be
// told apart: anything but exactly four fields is refused, as are values
// over the firmware's limits, holding a quote or control character, or
// with a blank at its edge inside quotes. A
// field wrapped in double quotes (as other Alibaba firmwares print their
// read-back) is unwrapped.
func parseIDMAU(body string) (AliyunInfo, bool) {
	fs := strings.Split(body, ",")
	if len(fs) != 4 {
		return AliyunInfo{}, false
	}
	var v [4]string
	for i, max := range [4]int{aliMaxPK, aliMaxDN, aliMaxDS, aliMaxPS} {
		f := strings.TrimSpace(fs[i])
		if len(f) >= 2 && f[0] == '"' && f[len(f)-1] == '"' {
			f = f[1 : len(f)-1]
		}
		// A blank at a quoted value's edge is not a platform value (keys,
		// names and secrets hold none) and would not survive a bare print.
		if len(f) > max || f != strings.TrimSpace(f) {
			return AliyunInfo{}, false
		}
		for j := 0; j < len(f); j++ {
			if c := f[j]; c == '"' || c < 0x20 || c == 0x7f {
				return AliyunInfo{}, false
			}
		}
		v[i] = f
	}
	return AliyunInfo{ProductKey: v[0], DeviceName: v[1], DeviceSecret: v[2], ProductSecret: v[3]}, true
}
