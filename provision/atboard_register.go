package provision

import (
	"context"
	"fmt"

	"github.com/iotburn/iotburn/registry"
)

// Register has the board run the vendor's dynamic registration (its
// firmware's AT command) against the platform.
func (b *atBoard) Register(ctx context.Context, mode Mode) error {
	m := ""
	if mode == ModeRegistrationFree {
		m = string(mode)
	}
	return b.drv.Register(ctx, m)
}

// DeviceCredential returns the device-level credential the board obtained.
// An Aliyun module shows its DeviceSecret; a Tencent one shows only the
// secret's checksum, so the secret comes from the platform and is checked
// against the board's checksum.
func (b *atBoard) DeviceCredential(ctx context.Context, c registry.Credential, cloud registry.Platform) (registry.Credential, error) {
	c.ProductSecret = ""
	switch c.Platform {
	case "aliyun":
		info, err := b.drv.AliyunDevInfo(ctx)
		if err != nil {
			return c, err
		}
		if info.DeviceSecret == "" {
			return c, fmt.Errorf("the board holds no device secret after registering")
		}
		c.DeviceSecret = info.DeviceSecret
		return c, nil
	default:
		if cloud == nil {
			return c, fmt.Errorf("a Tencent board shows only a checksum of its secret: give --cloud so the platform can tell it")
		}
		d, err := cloud.Device(ctx, c.ProductID, c.DeviceName)
		if err != nil {
			return c, err
		}
		c.DeviceSecret = d.DeviceSecret
		if err := b.drv.Verify(ctx, c); err != nil {
			return c, fmt.Errorf("the board's secret is not the one the platform holds for %s: %w", c.DeviceName, err)
		}
		return c, nil
	}
}

// Token returns a registration-free board's ClientID and DeviceToken.
func (b *atBoard) Token(ctx context.Context) (string, string, error) {
	return b.drv.AliyunToken(ctx)
}
