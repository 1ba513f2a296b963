package nvs

import (
	"errors"
	"fmt"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

// A kit the format cannot carry, or that the partition cannot hold, is
// refused at rendering (before anything is written); Check finds a board
// whose kit is not the ledger's.
func TestKitRefusals(t *testing.T) {
	gw := func(platform string, n int) registry.Credential {
		k := &registry.Kit{SubProduct: "a1SubPrd001"}
		for i := range n {
			k.SubDevices = append(k.SubDevices, fmt.Sprintf("sub-%04d", i+1))
		}
		return registry.Credential{Platform: platform, ProductID: "a1GwPrd0001", DeviceName: "gw0001", DeviceSecret: "dsj3RuY74pgCBJ3zczKz1LaLK7RGApqh", Kit: k}
	}
	if _, err := (Format{}).Render(gw("tencent", 3)); !errors.Is(err, ErrNoKitKeys) {
		t.Errorf("a kit in Tencent's keys: %v, want ErrNoKitKeys", err)
	}
	if (Format{}).CarriesKit("tencent") || !(Format{}).CarriesKit("aliyun") {
		t.Error("CarriesKit: Tencent's keys carry no kit, Aliyun's do")
	}
	// 0x4000 is four pages of 126 entries, one kept free: a name of up to 32
	// characters takes two entries, so 1,500 names cannot fit.
	if _, err := (Format{Size: 0x4000}).Render(gw("aliyun", 1500)); err == nil {
		t.Error("1,500 sub-devices rendered into a 16 KB partition")
	}
	long := AliyunKeys
	long.SubDevice = "SubDeviceName__" // 15 characters: its keys are 16 and more
	if _, err := (Format{Size: 0x4000, Keys: long}).Render(gw("aliyun", 3)); err == nil {
		t.Error("a kit whose key names outgrow 15 characters rendered")
	}
	empty := gw("aliyun", 0)
	if _, err := (Format{}).Render(empty); err == nil {
		t.Error("an empty kit rendered")
	}
	img, err := (Format{Size: 0x4000}).Render(gw("aliyun", 3))
	if err != nil {
		t.Fatal(err)
	}
	if err := (Format{}).Check(img, gw("aliyun", 3)); err != nil {
		t.Errorf("Check of its own kit: %v", err)
	}
	other := gw("aliyun", 3)
	other.Kit.SubDevices[2] = "sub-0009"
	if err := (Format{}).Check(img, other); !errors.Is(err, ErrMismatch) {
		t.Errorf("Check of another kit: %v, want ErrMismatch", err)
	}
	if err := (Format{}).Check(img, gw("aliyun", 4)); !errors.Is(err, ErrMismatch) {
		t.Errorf("Check of a bigger kit: %v, want ErrMismatch", err)
	}
}

// A sub-device's credential is its product and name alone: rendered
// without a secret, refused with one.
func TestSubDeviceRender(t *testing.T) {
	c := registry.Credential{Platform: "aliyun", ProductID: "a1SubPrd001", DeviceName: "sub-0001", SubDevice: true}
	img, err := (Format{Size: 0x3000}).Render(c)
	if err != nil {
		t.Fatal(err)
	}
	items, err := Read(img)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, it := range items {
		got[it.Key] = it.Value
	}
	if len(got) != 2 || got["ProductKey"] != "a1SubPrd001" || got["DeviceName"] != "sub-0001" {
		t.Fatalf("a sub-device's partition holds %v", got)
	}
	c.DeviceSecret = "dsj3RuY74pgCBJ3zczKz1LaLK7RGApqh"
	if _, err := (Format{}).Render(c); err == nil {
		t.Error("a sub-device with a secret rendered")
	}
	c.DeviceSecret = ""
	c.SubDevice = false
	if _, err := (Format{}).Render(c); err == nil {
		t.Error("a device with no secret rendered")
	}
}
