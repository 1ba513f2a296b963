package tencent

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
)

// The product's secret and dynamic-registration settings come through
// DescribeProducts' ProductProperties.
func TestProduct(t *testing.T) {
	id, key := emulator.NewKeyPair()
	emu, err := emulator.New(emulator.Config{SecretID: id, SecretKey: key, Products: []string{"PRODA", "PRODB"},
		DynRegProducts: map[string]emulator.ProductSettings{"tencent:PRODB": {DynamicRegistration: true, AutoCreate: true, AutoCreateQuota: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := New(Config{SecretID: id, SecretKey: key, Region: DefaultRegion, Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Product(context.Background(), "PRODA")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Known || a.DynamicRegister || a.AutoCreate {
		t.Errorf("PRODA: %+v, want registration off", a)
	}
	b, err := c.Product(context.Background(), "PRODB")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := emu.ProductSecret("tencent", "PRODB")
	if !b.DynamicRegister || !b.AutoCreate || b.AutoCreateLimit != 7 || b.Secret != want || want == "" {
		t.Errorf("PRODB: got dynreg=%v autocreate=%v limit=%d secret-ok=%v", b.DynamicRegister, b.AutoCreate, b.AutoCreateLimit, b.Secret == want)
	}
	if _, err := c.Product(context.Background(), "NOPE"); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("missing product: %v", err)
	}
}
