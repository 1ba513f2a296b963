package names

import (
	"fmt"
	"regexp"

	"github.com/iotburn/iotburn/registry"
)

// The platforms' device-name rules (DESIGN.md §2, sources in
// reference/tencent.md and reference/aliyun.md): Tencent IoT Hub
// [a-zA-Z0-9:_-]{1,48}, Alibaba Cloud IoT Platform [A-Za-z0-9_@.:-]{4,32}.
// The registry clients check the same rules again before they call; these
// let a names file be checked (and `create --dry-run` run) without cloud keys.
var (
	tencentName = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,48}$`)
	aliyunName  = regexp.MustCompile(`^[A-Za-z0-9_@.:-]{4,32}$`)
)

// PlatformRule is the device-name rule of platform (tencent or aliyun). Its
// errors name the value and the rule.
func PlatformRule(platform string) (func(string) error, error) {
	switch platform {
	case registry.Tencent:
		return func(n string) error {
			if !tencentName.MatchString(n) {
				return fmt.Errorf("%q is not a Tencent IoT Hub device name: 1 to 48 letters, digits, ':', '_' or '-' ([a-zA-Z0-9:_-]{1,48})", n)
			}
			return nil
		}, nil
	case registry.Aliyun:
		return func(n string) error {
			if !aliyunName.MatchString(n) {
				return fmt.Errorf("%q is not an Alibaba Cloud IoT device name: 4 to 32 letters, digits, '_', '@', '.', ':' or '-' ([A-Za-z0-9_@.:-]{4,32})", n)
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("unknown platform %q: use tencent or aliyun", platform)
}
