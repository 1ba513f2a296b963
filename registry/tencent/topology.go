package tencent

import (
	"context"
	"fmt"

	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry"
)

// DescribeGatewayBindDevices is in later tencentcloud-sdk-go releases, not
// in v1.0.162's iotcloud/v20180614 client: the request and answer are
// declared here in that client's own shape (GatewayProductId,
// GatewayDeviceName, ProductId, Offset, Limit → TotalCount, Devices,
// ProductName) and sent through its Send, signed as every other call.
type describeGatewayBindDevicesRequest struct {
	*tchttp.BaseRequest
	GatewayProductId  *string `json:"GatewayProductId,omitempty" name:"GatewayProductId"`
	GatewayDeviceName *string `json:"GatewayDeviceName,omitempty" name:"GatewayDeviceName"`
	ProductId         *string `json:"ProductId,omitempty" name:"ProductId"`
	Offset            *uint64 `json:"Offset,omitempty" name:"Offset"`
	Limit             *uint64 `json:"Limit,omitempty" name:"Limit"`
}

type describeGatewayBindDevicesResponse struct {
	*tchttp.BaseResponse
	Response *struct {
		TotalCount *uint64 `json:"TotalCount"`
		Devices    []*struct {
			DeviceName *string `json:"DeviceName"`
		} `json:"Devices"`
		RequestId *string `json:"RequestId"`
	} `json:"Response"`
}

// bindPage is the page the client asks for.
const bindPage = 100

// SubDevices pages DescribeGatewayBindDevices: the gateway's sub-devices of
// subProduct (required: the API lists one product's).
func (c *Client) SubDevices(ctx context.Context, gatewayProduct, gatewayName, subProduct string) ([]registry.SubDevice, error) {
	if subProduct == "" {
		return nil, fmt.Errorf("tencent: DescribeGatewayBindDevices lists one sub-device product's devices: name it")
	}
	var out []registry.SubDevice
	for {
		req := &describeGatewayBindDevicesRequest{BaseRequest: &tchttp.BaseRequest{}}
		req.Init().WithApiInfo("iotcloud", iot.APIVersion, "DescribeGatewayBindDevices")
		offset, limit := uint64(len(out)), uint64(bindPage)
		req.GatewayProductId, req.GatewayDeviceName, req.ProductId, req.Offset, req.Limit = &gatewayProduct, &gatewayName, &subProduct, &offset, &limit
		resp := &describeGatewayBindDevicesResponse{BaseResponse: &tchttp.BaseResponse{}}
		err := c.do(ctx, "DescribeGatewayBindDevices", idempotent, func() error {
			if err := c.api.Send(req, resp); err != nil {
				return err
			}
			if resp.Response == nil {
				return fmt.Errorf("DescribeGatewayBindDevices answered without a Response")
			}
			return nil
		})
		if err != nil {
			if code(err) == codeDeviceNotExist {
				return nil, fmt.Errorf("tencent: gateway %s/%s: %w: %w", gatewayProduct, gatewayName, registry.ErrNotFound, err)
			}
			return nil, err
		}
		for _, d := range resp.Response.Devices {
			out = append(out, registry.SubDevice{Product: subProduct, DeviceName: str(d.DeviceName)})
		}
		if len(resp.Response.Devices) == 0 || uint64(len(out)) >= u64(resp.Response.TotalCount) {
			return out, nil
		}
	}
}
