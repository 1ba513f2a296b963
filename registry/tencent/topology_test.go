package tencent

import (
	"context"
	"errors"
	"testing"

	iot "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/iotcloud/v20180614"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/emulator"
)

// SubDevices reads a gateway's bound sub-devices through the SDK's own Send
// and signing, across pages; an unknown gateway is ErrNotFound.
func TestSubDevices(t *testing.T) {
	_, c, _ := setup(t, emulator.Config{GatewayProducts: []string{"GWPRODUCT1"}, SubDeviceProducts: []string{"SUBPRODUC1"}, TaskDelay: -1, RateLimit: -1})
	create := func(pid string, names ...string) {
		for _, n := range names {
			r := iot.NewCreateDeviceRequest()
			r.ProductId, r.DeviceName = &pid, &n
			if _, err := c.api.CreateDevice(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	create("GWPRODUCT1", "gw1")
	subs := names("sub", bindPage+5)
	create("SUBPRODUC1", subs...)
	for i := 0; i < len(subs); i += 100 {
		r := iot.NewBindDevicesRequest()
		gp, gn, sp := "GWPRODUCT1", "gw1", "SUBPRODUC1"
		r.GatewayProductId, r.GatewayDeviceName, r.ProductId = &gp, &gn, &sp
		for _, n := range subs[i:min(i+100, len(subs))] {
			r.DeviceNames = append(r.DeviceNames, &n)
		}
		if _, err := c.api.BindDevices(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.SubDevices(context.Background(), "GWPRODUCT1", "gw1", "SUBPRODUC1")
	if err != nil || len(got) != len(subs) || got[0] != (registry.SubDevice{Product: "SUBPRODUC1", DeviceName: subs[0]}) {
		t.Fatalf("SubDevices: %d %v", len(got), err)
	}
	if _, err := c.SubDevices(context.Background(), "GWPRODUCT1", "nosuch", "SUBPRODUC1"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("an unknown gateway: %v", err)
	}
}
