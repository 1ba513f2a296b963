package aliyun

import (
	"context"
	"fmt"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	iot "github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/iotburn/iotburn/registry"
)

// topoPage is GetThingTopo's largest page ("PageSize … 最大值：50", doc 69770).
const topoPage = 50

// SubDevices pages GetThingTopo: the gateway's sub-devices, of subProduct
// only when it is not "".
func (c *Client) SubDevices(ctx context.Context, gatewayProduct, gatewayName, subProduct string) ([]registry.SubDevice, error) {
	var out []registry.SubDevice
	for page, seen := 1, 0; ; page++ {
		var resp *iot.GetThingTopoResponse
		err := c.do(ctx, "GetThingTopo", func(api *iot.Client) (answer, error) {
			req := iot.CreateGetThingTopoRequest()
			c.prepare(req.RpcRequest)
			req.ProductKey, req.DeviceName = gatewayProduct, gatewayName
			req.PageNo, req.PageSize = requests.NewInteger(page), requests.NewInteger(topoPage)
			r, err := api.GetThingTopo(req)
			if err != nil {
				return answer{}, err
			}
			resp = r
			return answerOf(r.Success, r.Code, r.ErrorMessage, r.RequestId), nil
		})
		if err != nil {
			if code(err) == codeNotExisted {
				return nil, fmt.Errorf("aliyun: gateway %s/%s: %w: %w", gatewayProduct, gatewayName, registry.ErrNotFound, err)
			}
			return nil, err
		}
		list := resp.Data.List.DeviceInfo
		for _, d := range list {
			if subProduct == "" || d.ProductKey == subProduct {
				out = append(out, registry.SubDevice{Product: d.ProductKey, DeviceName: d.DeviceName})
			}
		}
		seen += len(list)
		if len(list) == 0 || int64(seen) >= resp.Data.Total {
			return out, nil
		}
	}
}
