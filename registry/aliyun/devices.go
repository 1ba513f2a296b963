package aliyun

import (
	"context"
	"fmt"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"
	"github.com/iotburn/iotburn/registry"
)

const codeNotExisted = "iot.device.NotExistedDevice"

// Device calls QueryDeviceDetail, which returns the DeviceSecret: that lets a
// crashed create recover a device whose application answer was lost.
func (c *Client) Device(ctx context.Context, product, name string) (registry.Device, error) {
	var d iot.DataInQueryDeviceDetail
	err := c.do(ctx, "QueryDeviceDetail", func(api *iot.Client) (answer, error) {
		req := iot.CreateQueryDeviceDetailRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey, req.DeviceName = product, name
		resp, err := api.QueryDeviceDetail(req)
		if err != nil {
			return answer{}, err
		}
		d = resp.Data
		return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
	})
	if err != nil {
		if code(err) == codeNotExisted {
			return registry.Device{}, fmt.Errorf("aliyun: device %s/%s: %w: %w", product, name, registry.ErrNotFound, err)
		}
		return registry.Device{}, err
	}
	dev := registry.Device{
		DeviceName:   d.DeviceName,
		DeviceSecret: d.DeviceSecret,
		Enabled:      d.Status != "DISABLE",
		Online:       d.Status == "ONLINE",
		CreatedAt:    parseUTC(d.UtcCreate),
	}
	// An X.509 device's certificate and key: QueryDeviceCert answers them on
	// every call, so a crashed create gets them back here. (A device with a
	// secret costs no QueryProduct.)
	if d.DeviceSecret != "" {
		return dev, nil
	}
	if auth, err := c.productAuth(ctx, product); err != nil {
		return registry.Device{}, err
	} else if auth == registry.AuthCert {
		info, err := c.deviceCert(ctx, product, name)
		if err != nil {
			return registry.Device{}, err
		}
		dev.DeviceCert, dev.DevicePrivateKey = info.Certificate, info.PrivateKey
	}
	return dev, nil
}

// parseUTC reads the Utc* fields ("2018-08-06T02:48:41.000Z"); 0 if absent.
func parseUTC(s string) int64 {
	for _, layout := range []string{"2006-01-02T15:04:05.000Z", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Unix()
		}
	}
	return 0
}

// devicesPage is QueryDevice's largest page.
const devicesPage = 50

// Devices pages QueryDevice.
func (c *Client) Devices(ctx context.Context, product string) ([]registry.Device, error) {
	var out []registry.Device
	for page := 1; ; page++ {
		var resp *iot.QueryDeviceResponse
		err := c.do(ctx, "QueryDevice", func(api *iot.Client) (answer, error) {
			req := iot.CreateQueryDeviceRequest()
			c.prepare(req.RpcRequest)
			req.ProductKey, req.PageSize, req.CurrentPage = product, requests.NewInteger(devicesPage), requests.NewInteger(page)
			var err error
			if resp, err = api.QueryDevice(req); err != nil {
				return answer{}, err
			}
			return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
		})
		if err != nil {
			return nil, err
		}
		for _, d := range resp.Data.DeviceInfo {
			out = append(out, registry.Device{
				DeviceName:   d.DeviceName,
				DeviceSecret: d.DeviceSecret,
				Enabled:      d.DeviceStatus != "DISABLE",
				Online:       d.DeviceStatus == "ONLINE",
				CreatedAt:    parseUTC(d.UtcCreate),
			})
		}
		if len(resp.Data.DeviceInfo) == 0 || len(out) >= resp.Total {
			return out, nil
		}
	}
}

// DeleteDevice calls DeleteDevice; a missing device gives an error wrapping
// registry.ErrNotFound.
func (c *Client) DeleteDevice(ctx context.Context, product, name string) error {
	err := c.do(ctx, "DeleteDevice", func(api *iot.Client) (answer, error) {
		req := iot.CreateDeleteDeviceRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey, req.DeviceName = product, name
		resp, err := api.DeleteDevice(req)
		if err != nil {
			return answer{}, err
		}
		return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
	})
	if err != nil && code(err) == codeNotExisted {
		return fmt.Errorf("aliyun: device %s/%s: %w: %w", product, name, registry.ErrNotFound, err)
	}
	return err
}
