package demo

import (
	"context"
	"errors"
	"testing"

	"github.com/iotburn/iotburn/provision"
)

// Registration-free on ESP32 boards: every board burned and verified by its
// own registration and login (Run's cross-check reads each board's fctry
// from its flash: the product's key, its own name, no device secret).
func TestRunRegistrationFreeOnESP32(t *testing.T) {
	res, err := Run(context.Background(), Options{Dir: t.TempDir(), Platform: "aliyun", Mode: provision.ModeRegistrationFree, Boards: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Line.Burned != 2 || res.Verified != 2 {
		t.Fatalf("burned %d, verified %d, want 2 and 2", res.Line.Burned, res.Verified)
	}
}

// The kits' limits, refused before anything is burned: esp-qcloud has no
// dynamic registration, the IDMAU AT firmware no registration-free.
func TestRunRefusesWhatTheFirmwareCannot(t *testing.T) {
	for _, o := range []Options{
		{Platform: "tencent", Mode: provision.ModeAutocreate, Kind: "esp32"},
		{Platform: "tencent", Mode: provision.ModePreregistered, Kind: "esp32"},
		{Platform: "aliyun", Mode: provision.ModeRegistrationFree, Kind: "aliyun-at"},
	} {
		o.Dir = t.TempDir()
		if _, err := Run(context.Background(), o); !errors.Is(err, provision.ErrModeBoard) {
			t.Errorf("%s %s on %s: %v, want refused (ErrModeBoard)", o.Platform, o.Mode, o.Kind, err)
		}
	}
}
