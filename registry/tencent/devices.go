package tencent

import (
	"context"
	"fmt"

	"github.com/iotburn/iotburn/registry"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"
)

const codeDeviceNotExist = "ResourceNotFound.DeviceNotExist"

// Device calls DescribeDevice (whose 2018-06-14 request key is ProductID).
func (c *Client) Device(ctx context.Context, product, name string) (registry.Device, error) {
	req := iot.NewDescribeDeviceRequest()
	req.ProductID, req.DeviceName = &product, &name
	var resp *iot.DescribeDeviceResponse
	err := c.do(ctx, "DescribeDevice", idempotent, func() (err error) {
		resp, err = c.api.DescribeDevice(req)
		if err == nil && resp.Response == nil {
			err = fmt.Errorf("DescribeDevice answered without a Response")
		}
		return err
	})
	if err != nil {
		if code(err) == codeDeviceNotExist {
			return registry.Device{}, fmt.Errorf("tencent: device %s/%s: %w: %w", product, name, registry.ErrNotFound, err)
		}
		return registry.Device{}, err
	}
	r := resp.Response
	return registry.Device{
		DeviceName:   str(r.DeviceName),
		DeviceSecret: str(r.DevicePsk),
		DeviceCert:   str(r.DeviceCert),                           // the key is not in DescribeDevice: DevicePrivateKey gets it, once
		Enabled:      r.EnableState == nil || *r.EnableState == 1, // absent: the field predates disabling
		Online:       u64(r.Online) == 1,
		CreatedAt:    int64(u64(r.CreateTime)),
	}, nil
}

// devicesPage is DescribeDevices' largest page ("数值范围 10-250").
const devicesPage = 250

// Devices pages DescribeDevices.
func (c *Client) Devices(ctx context.Context, product string) ([]registry.Device, error) {
	var out []registry.Device
	for {
		req := iot.NewDescribeDevicesRequest()
		offset, limit := uint64(len(out)), uint64(devicesPage)
		req.ProductId, req.Offset, req.Limit = &product, &offset, &limit
		var resp *iot.DescribeDevicesResponse
		err := c.do(ctx, "DescribeDevices", idempotent, func() (err error) {
			resp, err = c.api.DescribeDevices(req)
			if err == nil && resp.Response == nil {
				err = fmt.Errorf("DescribeDevices answered without a Response")
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, d := range resp.Response.Devices {
			out = append(out, registry.Device{
				DeviceName:   str(d.DeviceName),
				DeviceSecret: str(d.DevicePsk),
				DeviceCert:   str(d.DeviceCert),
				Enabled:      d.EnableState == nil || *d.EnableState == 1,
				Online:       u64(d.Online) == 1,
				CreatedAt:    int64(u64(d.CreateTime)),
			})
		}
		if len(resp.Response.Devices) == 0 || uint64(len(out)) >= u64(resp.Response.TotalCount) {
			return out, nil
		}
	}
}

// DeleteDevice calls DeleteDevice; a missing device gives an error wrapping
// registry.ErrNotFound.
func (c *Client) DeleteDevice(ctx context.Context, product, name string) error {
	req := iot.NewDeleteDeviceRequest()
	req.ProductId, req.DeviceName = &product, &name
	err := c.do(ctx, "DeleteDevice", idempotent, func() error {
		_, err := c.api.DeleteDevice(req)
		return err
	})
	if err != nil && code(err) == codeDeviceNotExist {
		return fmt.Errorf("tencent: device %s/%s: %w: %w", product, name, registry.ErrNotFound, err)
	}
	return err
}

var _ registry.PrivateKeyFetcher = (*Client)(nil)

// Codes of DescribeDeviceClientKey's refusals (the SDK's list for it in
// later tencentcloud-sdk-go iotcloud/v20180614/client.go).
const (
	codeClientKeyAlreadyGot = "UnsupportedOperation.ClientCertAlreadyGot"
	codeWrongAuthType       = "UnsupportedOperation.WrongProductAuthType"
)

// DevicePrivateKey calls DescribeDeviceClientKey: a certificate device's
// private key (PEM), which Tencent hands out once after the device is made
// ("刚生成或者重置设备后仅可调用一次"). A key already handed out (by this call,
// or with the batch's answer) is an error wrapping registry.ErrKeyGone. It
// is never repeated after an ambiguous failure: an answer lost on the way
// may have used up the one read, and a repeat would be refused anyway.
func (c *Client) DevicePrivateKey(ctx context.Context, product, name string) (string, error) {
	req := iot.NewDescribeDeviceClientKeyRequest()
	req.ProductId, req.DeviceName = &product, &name
	var key string
	err := c.do(ctx, "DescribeDeviceClientKey", creating, func() error {
		resp, err := c.api.DescribeDeviceClientKey(req)
		if err != nil {
			return err
		}
		if resp.Response == nil || str(resp.Response.ClientKey) == "" {
			return fmt.Errorf("DescribeDeviceClientKey answered without a ClientKey")
		}
		key = *resp.Response.ClientKey
		return nil
	})
	switch code(err) {
	case "":
		if err != nil && ctx.Err() == nil {
			return "", fmt.Errorf("%w (the platform may have handed the key out and the answer been lost: "+
				"it gives the key once, so look at CertState in DescribeDevice before relying on a retry)", err)
		}
		return key, err
	case codeClientKeyAlreadyGot:
		return "", fmt.Errorf("tencent: the private key of %s/%s was already handed out (Tencent gives it once): %w: %w",
			product, name, registry.ErrKeyGone, err)
	case codeDeviceNotExist:
		return "", fmt.Errorf("tencent: device %s/%s: %w: %w", product, name, registry.ErrNotFound, err)
	case codeWrongAuthType:
		return "", fmt.Errorf("tencent: product %s uses key authentication: its devices have no private key: %w", product, err)
	}
	return "", err
}
