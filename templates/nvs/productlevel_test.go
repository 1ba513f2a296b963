package nvs

import (
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

// A product-level credential (ProductSecret, no DeviceSecret) renders its
// product secret under the platform's key and no device secret; a
// device-level one has no product-secret entry, so existing images stay
// byte-identical (the golden tests hold that).
func TestProductLevelNVS(t *testing.T) {
	for _, tc := range []struct {
		cred registry.Credential
		ns   string
		want map[string]string
	}{
		{registry.Credential{Platform: "tencent", ProductID: "S3EUVBRJLB", DeviceName: "device_1234", ProductSecret: "8XzjN8rfgFVGDTNTUGau4snA", Region: "ap-guangzhou"},
			"qcloud-key", map[string]string{"product_id": "S3EUVBRJLB", "device_name": "device_1234", "product_secret": "8XzjN8rfgFVGDTNTUGau4snA", "region": "ap-guangzhou"}},
		{registry.Credential{Platform: "aliyun", ProductID: "a1X2bEnP82z", DeviceName: "example1", ProductSecret: "7jluWm1zql7bt8qK"},
			"aliyun-key", map[string]string{"ProductKey": "a1X2bEnP82z", "DeviceName": "example1", "ProductSecret": "7jluWm1zql7bt8qK"}},
		{registry.Credential{Platform: "aliyun", ProductID: "a1X2bEnP82z", DeviceName: "example1", DeviceSecret: "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe"},
			"aliyun-key", map[string]string{"ProductKey": "a1X2bEnP82z", "DeviceName": "example1", "DeviceSecret": "ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe"}},
	} {
		t.Run(tc.cred.Platform+"/"+tc.cred.DeviceName, func(t *testing.T) {
			img, err := Format{}.Render(tc.cred)
			if err != nil {
				t.Fatal(err)
			}
			items, err := Read(img)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, it := range items {
				if it.Kind == String && it.Namespace == tc.ns {
					got[it.Key], _ = it.Value.(string)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("keys %v, want %v", keysOf(got), keysOf(tc.want))
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("key %s holds %q, want %q", k, got[k], v)
				}
			}
			if err := (Format{}).Check(img, tc.cred); err != nil {
				t.Fatal(err)
			}
			other := tc.cred
			other.ProductSecret += "x"
			if other.DeviceSecret != "" {
				other.ProductSecret = "" // device-level: ProductSecret not burned, so not checked
				other.DeviceSecret += "x"
			}
			err = (Format{}).Check(img, other)
			if err == nil || strings.Contains(err.Error(), other.ProductSecret+other.DeviceSecret) {
				t.Fatalf("Check of another secret: %v", err)
			}
		})
	}
	// Custom keys without a product-secret key cannot carry a product-level
	// credential: refused, rather than an image with no secret at all.
	_, err := Format{Keys: Keys{Namespace: "ns", ProductID: "p", DeviceName: "n", DeviceSecret: "s"}}.Render(
		registry.Credential{ProductID: "P", DeviceName: "d", ProductSecret: "ps-secret"})
	if err == nil || !strings.Contains(err.Error(), "no key name is set for the product secret") {
		t.Fatalf("err = %v", err)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// One partition for every board of a product: product id and secret, no
// name (the firmware names itself) and no device secret.
func TestPerProductPartition(t *testing.T) {
	img, err := Format{Size: 0x3000, Keys: TencentKeys}.Render(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", ProductSecret: "cHJvZHVjdC1zZWNyZXQ="})
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
	if len(got) != 2 || got["product_id"] != "ABCDEFGHIJ" || got["product_secret"] != "cHJvZHVjdC1zZWNyZXQ=" {
		t.Fatalf("items %v, want product_id and product_secret only", got)
	}
}
