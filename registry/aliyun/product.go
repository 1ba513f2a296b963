package aliyun

import (
	"context"

	"github.com/aliyun/alibaba-cloud-sdk-go/services/iot"

	"github.com/iotburn/iotburn/registry"
)

var _ registry.ProductInfo = (*Client)(nil)

// Product reads the ProductSecret and the authentication type with
// QueryProduct. Its answer does not say whether dynamic registration or
// registration-free is switched on (the console does), so Known is false:
// the platform refuses at registration.
func (c *Client) Product(ctx context.Context, id string) (registry.Product, error) {
	var secret, auth string
	err := c.do(ctx, "QueryProduct", func(api *iot.Client) (answer, error) {
		req := iot.CreateQueryProductRequest()
		c.prepare(req.RpcRequest)
		req.ProductKey = id
		resp, err := api.QueryProduct(req)
		if err != nil {
			return answer{}, err
		}
		secret, auth = resp.Data.ProductSecret, resp.Data.AuthType
		return answerOf(resp.Success, resp.Code, resp.ErrorMessage, resp.RequestId), nil
	})
	if err != nil {
		return registry.Product{}, err
	}
	p := registry.Product{ID: id, Secret: secret, AuthRaw: auth, Auth: authType(auth)}
	c.auth.Store(id, p.Auth)
	return p, nil
}

// authType reads QueryProduct's AuthType: "secret" (device secrets), "x509"
// (X.509 certificates) or "id2" (ALIYUN::IOT::Product AuthType; doc 69123).
// An empty AuthType, from a product made before the field, is a secret
// product: the cloud's default ("设备密钥"). id2 is not spoken ("").
func authType(s string) registry.AuthType {
	switch s {
	case "secret", "":
		return registry.AuthKey
	case "x509":
		return registry.AuthCert
	}
	return ""
}

// productAuth is the product's authentication type, asked once per product
// and kept: a product's type never changes ("设备身份认证方式设置后，不可更改",
// doc 140588).
func (c *Client) productAuth(ctx context.Context, id string) (registry.AuthType, error) {
	if v, ok := c.auth.Load(id); ok {
		return v.(registry.AuthType), nil
	}
	p, err := c.Product(ctx, id)
	if err != nil {
		return "", err
	}
	return p.Auth, nil
}
