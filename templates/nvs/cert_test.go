package nvs

import (
	"errors"
	"strings"
	"testing"
)

// A certificate device's partition reads back to its certificate and key
// under the documented names, and Check catches a partition holding
// another key.
func TestCertRenderCheck(t *testing.T) {
	c := certCredential(t)
	f := Format{}
	img, err := f.Render(c)
	if err != nil {
		t.Fatal(err)
	}
	items, err := Read(img)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, it := range items {
		got[it.Namespace+"/"+it.Key] = it.Value
	}
	if got["qcloud-key/dev_cert"] != c.DeviceCert || got["qcloud-key/priv_key"] != c.DevicePrivateKey {
		t.Fatalf("read back: %v keys", len(got))
	}
	if _, ok := got["qcloud-key/device_secret"]; ok {
		t.Error("a certificate device's partition has a device_secret")
	}
	if err := f.Check(img, c); err != nil {
		t.Errorf("Check of its own image: %v", err)
	}
	other := c
	other.DevicePrivateKey = strings.Replace(c.DevicePrivateKey, "A", "B", 1)
	err = f.Check(img, other)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "priv_key") {
		t.Errorf("Check against another key: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE") {
		t.Errorf("the error shows the key: %v", err)
	}
}

// What a partition cannot carry is refused before an image exists: no
// names for the two halves, a half missing, a PEM over the NVS string
// limit of the version.
func TestCertRefused(t *testing.T) {
	c := certCredential(t)
	noNames := TencentKeys
	noNames.DevicePrivateKey = ""
	if _, err := (Format{Keys: noNames}).Render(c); err == nil || !strings.Contains(err.Error(), "--nvs-key-private-key") {
		t.Errorf("no key name: %v", err)
	}
	half := c
	half.DevicePrivateKey = ""
	if _, err := (Format{}).Render(half); err == nil {
		t.Error("a certificate without its key was rendered")
	}
	long := c
	long.DeviceCert = strings.Repeat(c.DeviceCert, 2) // 2270 bytes: over v1's 1983, under v2's 3967
	if _, err := (Format{Version: V1}).Render(long); !errors.Is(err, ErrCertTooLong) {
		t.Errorf("v1, 2270-byte certificate: %v", err)
	}
	if _, err := (Format{}).Render(long); err != nil {
		t.Errorf("v2, 2270-byte certificate: %v", err)
	}
	long.DeviceCert = strings.Repeat("x", 3968)
	if _, err := (Format{}).Render(long); !errors.Is(err, ErrCertTooLong) {
		t.Errorf("v2, 3968 bytes: %v", err)
	}
	long.DeviceCert = strings.Repeat("x", 3967)
	if _, err := (Format{}).Render(long); err != nil {
		t.Errorf("v2, 3967 bytes (the limit): %v", err)
	}
}
