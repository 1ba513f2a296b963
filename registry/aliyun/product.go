package aliyun

import (
	"context"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/iotburn/iotburn/registry"
)

var _ registry.ProductInfo = (*Client)(nil)

// Product reads the ProductSecret with QueryProduct. Its answer does not say
// whether dynamic registration or registration-free is switched on (the
// console does), so Known is false: the platform refuses at registration.
func (c *Client) Product(ctx context.Context, id string) (registry.Product, error) {
	var secret string
	err := c.do(ctx, "QueryProduct", func(api *iot.Client) (answer, error) {
		req := iot.CreateQueryProductRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey = id
		resp, err := api.QueryProduct(req)
		if err != nil {
			return answer{}, err
		}
		secret = resp.Data.ProductSecret
		return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
	})
	if err != nil {
		return registry.Product{}, err
	}
	return registry.Product{ID: id, Secret: secret}, nil
}
