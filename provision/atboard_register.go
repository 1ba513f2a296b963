package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/templates"
)

// Register has the board's credential registered with the platform in the
// product-level modes.
//
// Tencent: the board does it itself, AT+TCDEVREG (its firmware calls the
// platform's /register/dev).
//
// Aliyun: the IDMAU firmware cannot. Its cloud client starts only with a
// DeviceSecret and a ProductSecret stored and logs in with dynamic
// registration off (YoC smart_living user_get_iot_info, linkkit_thread;
// burner/sim's aliyun.go), so a module burned with "PK","DN","","PS" never
// connects. In product-preregistered mode the station registers the
// board's name for it, with the ProductSecret the board holds: the
// platform's HTTPS pre-registration (POST /auth/register/device at
// RegisterURL, reference/aliyun.md §3a), which gives the device a fresh
// DeviceSecret while it has never connected and refuses one that has. The
// secret is written to the board (AT+IDMAU="PK","DN","DS","PS") and read
// back, then the module is told to log in (AT+IDMCON) and must report it
// (AT+IDMSTA? 2). Registration-free has no place on this firmware (no
// command takes a ClientID or DeviceToken): refused.
func (b *atBoard) Register(ctx context.Context, mode Mode) error {
	if b.drv.Dialect != at.Aliyun {
		m := ""
		if mode == ModeRegistrationFree {
			m = at.ModeRegistrationFree
		}
		return b.drv.Register(ctx, m)
	}
	if mode == ModeRegistrationFree {
		return fmt.Errorf("%w: %s", ErrModeBoard, aliyunATNoFree)
	}
	info, err := b.drv.AliyunDevInfo(ctx)
	if err != nil {
		return err
	}
	if info.ProductKey == "" || info.DeviceName == "" || info.ProductSecret == "" {
		return fmt.Errorf("board on %s holds no product key, device name and product secret to register with: burn it first: %w", b.port.Name(), at.ErrMismatch)
	}
	u, err := b.registerURL()
	if err != nil {
		return err
	}
	ds, err := devauth.AliyunRegister(ctx, u, info.ProductKey, info.ProductSecret, info.DeviceName)
	if _, refused := devauth.Refused(err); refused {
		// The platform answered no (wrong product secret, name not created,
		// device active already): evidence, as a board's own refusal is.
		return fmt.Errorf("pre-registering %s for the board on %s: %w: %w", info.DeviceName, b.port.Name(), registry.ErrRefused, err)
	}
	if err != nil {
		return fmt.Errorf("pre-registering %s for the board on %s: %w", info.DeviceName, b.port.Name(), err)
	}
	c := registry.Credential{Platform: registry.Aliyun, ProductID: info.ProductKey, DeviceName: info.DeviceName, DeviceSecret: ds, ProductSecret: info.ProductSecret}
	img, err := templates.AliyunAT{}.Render(c)
	if err != nil {
		return fmt.Errorf("the DeviceSecret the platform issued for %s: %w", info.DeviceName, err)
	}
	if err := b.drv.RunScript(ctx, img); err != nil {
		return err
	}
	if err := b.drv.VerifyAliyun(ctx, c); err != nil {
		return err
	}
	return b.drv.Connect(ctx)
}

// aliyunATNoFree says why registration-free does not run on IDMAU modules.
const aliyunATNoFree = "Alibaba's IDMAU AT firmware cannot do registration-free: no command takes a ClientID and DeviceToken, and its cloud client logs in only with a DeviceSecret (YoC smart_living app_at_cmd.c, linkkit_thread). Use --mode product-preregistered (the station registers each board's name), --mode device, or ESP32 boards with Espressif's esp-aliyun kit"

// registerURL is ATBoardOptions.RegisterURL, or the region's public
// endpoint (the product's region is the platform client's; cn-shanghai
// when none is known).
func (b *atBoard) registerURL() (string, error) {
	if u := b.opts.RegisterURL; u != "" {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return "", fmt.Errorf("registration endpoint %q is not an http(s) URL", u)
		}
		return u, nil
	}
	return "https://iot-auth.cn-shanghai.aliyuncs.com", nil
}

// DeviceCredential returns the device-level credential the board now
// holds, with the secret the platform holds now (a registration before
// the first login replaces the key that `create` stored; the ledger's copy
// is then stale, and this one counts).
//
// Tencent: the module shows only the secret's checksum, so the secret
// comes from the platform and is checked against the board's checksum.
// Aliyun: the module shows the DeviceSecret itself (AT+IDMAU?); it is
// compared with the platform's, and the platform must see the device
// online (QueryDeviceDetail Status ONLINE), as the module's AT+IDMSTA? says.
func (b *atBoard) DeviceCredential(ctx context.Context, c registry.Credential, cloud registry.Platform) (registry.Credential, error) {
	c.ProductSecret = ""
	switch c.Platform {
	case registry.Aliyun:
		info, err := b.drv.AliyunDevInfo(ctx)
		if err != nil {
			return c, err
		}
		if info.DeviceSecret == "" {
			return c, fmt.Errorf("the board holds no device secret after registering")
		}
		c.DeviceSecret = info.DeviceSecret
		if cloud == nil {
			return c, nil
		}
		return c, platformOnline(ctx, cloud, c)
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

// platformOnline checks the platform's view of an Aliyun device: its
// DeviceSecret is the board's, and it is online (the platform may take a
// moment to show the login: asked for up to 5 s).
func platformOnline(ctx context.Context, cloud registry.Platform, c registry.Credential) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := cloud.Device(ctx, c.ProductID, c.DeviceName)
		if err != nil {
			return err
		}
		if d.DeviceSecret != "" && d.DeviceSecret != c.DeviceSecret {
			return fmt.Errorf("the board's DeviceSecret is not the one the platform holds for %s now (registered again since?): %w", c.DeviceName, at.ErrMismatch)
		}
		if d.Online {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the board reports its cloud connection, but the platform does not show %s online: %w", c.DeviceName, at.ErrNotConnected)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Token is a registration-free board's ClientID and DeviceToken: no AT
// firmware iotburn drives keeps one.
func (b *atBoard) Token(ctx context.Context) (string, string, error) {
	return "", "", errors.Join(ErrModeBoard, errors.New("no AT firmware iotburn drives holds a registration-free ClientID and DeviceToken"))
}
