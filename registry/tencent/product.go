package tencent

import (
	"context"
	"fmt"

	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry"
)

var _ registry.ProductInfo = (*Client)(nil)

// Product finds the product with DescribeProducts (this API version has no
// single-product call) and reads its authentication type (EncryptionType),
// ProductSecret and dynamic-registration settings: RegisterType 0 off, 1 on,
// 2 on with auto-create up to RegisterLimit.
func (c *Client) Product(ctx context.Context, id string) (registry.Product, error) {
	seen := uint64(0)
	for {
		req := iot.NewDescribeProductsRequest()
		limit := uint64(devicesPage)
		req.Offset, req.Limit = &seen, &limit
		var resp *iot.DescribeProductsResponse
		err := c.do(ctx, "DescribeProducts", idempotent, func() (err error) {
			resp, err = c.api.DescribeProducts(req)
			if err == nil && resp.Response == nil {
				err = fmt.Errorf("DescribeProducts answered without a Response")
			}
			return err
		})
		if err != nil {
			return registry.Product{}, err
		}
		for _, p := range resp.Response.Products {
			if str(p.ProductId) != id {
				continue
			}
			out := registry.Product{ID: id, Known: true}
			if pp := p.ProductProperties; pp != nil {
				out.AuthRaw = str(pp.EncryptionType)
				out.Auth = authType(out.AuthRaw)
				out.Secret = str(pp.ProductSecret)
				rt := u64(pp.RegisterType)
				out.DynamicRegister = rt == 1 || rt == 2
				out.AutoCreate = rt == 2
				out.AutoCreateLimit = int(u64(pp.RegisterLimit))
			}
			return out, nil
		}
		seen += uint64(len(resp.Response.Products))
		if len(resp.Response.Products) == 0 || seen >= u64(resp.Response.TotalCount) {
			return registry.Product{}, fmt.Errorf("tencent: product %s does not exist for this key: check --product: %w", id, registry.ErrNotFound)
		}
	}
}

// authType reads EncryptionType: "加密类型，1表示证书认证，2表示签名认证"
// (ProductProperties, models.go). Anything else is not known ("").
func authType(encryptionType string) registry.AuthType {
	switch encryptionType {
	case "1":
		return registry.AuthCert
	case "2":
		return registry.AuthKey
	}
	return ""
}
