package aliyun

import (
	"context"
	"testing"

	"github.com/iotburn/iotburn/registry/emulator"
)

func TestProduct(t *testing.T) {
	e, c, _ := setup(t, emulator.Config{})
	p, err := c.Product(context.Background(), testProduct)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := e.ProductSecret("aliyun", testProduct)
	if !ok || want == "" || p.Secret != want || p.Known {
		t.Errorf("got secret-ok=%v known=%v, want the emulator's secret and Known false", p.Secret == want, p.Known)
	}
	if _, err := c.Product(context.Background(), "a1NoSuchProd"); err == nil {
		t.Error("a missing product gave no error")
	}
}
