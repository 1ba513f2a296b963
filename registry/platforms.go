package registry

import (
	"fmt"
	"strings"
)

// PlatformName names a cloud platform the way every part of iotburn spells
// it: in flags (--platform), in the ledger, in credentials, in images.
// Adding a platform is one constant here, its adapter package and its
// cases where behaviour differs.
type PlatformName = string

// The platforms iotburn speaks.
const (
	Tencent PlatformName = "tencent" // Tencent Cloud IoT Hub (iotcloud 2018-06-14)
	Aliyun  PlatformName = "aliyun"  // Alibaba Cloud IoT Platform (Iot 2018-01-20)
)

// Platforms lists them, in the order help texts name them.
var Platforms = []PlatformName{Tencent, Aliyun}

// ErrUnknownPlatform is a platform name iotburn does not speak.
var ErrUnknownPlatform = fmt.Errorf("unknown platform: use %s", strings.Join(Platforms, " or "))

// ParsePlatform checks a platform name.
func ParsePlatform(s string) (PlatformName, error) {
	for _, p := range Platforms {
		if s == p {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w", s, ErrUnknownPlatform)
}
