package provision

import (
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

func TestCheckMode(t *testing.T) {
	on := &registry.Product{ID: "P", Secret: "s3cret", Known: true, DynamicRegister: true}
	auto := &registry.Product{ID: "P", Secret: "s3cret", Known: true, DynamicRegister: true, AutoCreate: true}
	off := &registry.Product{ID: "P", Secret: "s3cret", Known: true}
	tests := []struct {
		mode     Mode
		platform string
		p        *registry.Product
		want     string // "" = accepted
	}{
		{ModeDevice, "tencent", nil, ""},
		{ModeRegistrationFree, "tencent", nil, "use --platform aliyun"},
		{ModeAutocreate, "aliyun", nil, "registration-free"},
		{ModePreregistered, "tencent", on, ""},
		{ModePreregistered, "tencent", off, "switched off"},
		{ModeAutocreate, "tencent", on, "auto-create"},
		{ModeAutocreate, "tencent", auto, ""},
		{ModeRegistrationFree, "aliyun", &registry.Product{ID: "a1", Secret: "x"}, ""},
		{ModePreregistered, "aliyun", &registry.Product{ID: "a1"}, "no ProductSecret"},
	}
	for _, tt := range tests {
		err := CheckMode(tt.mode, tt.platform, tt.p)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckMode(%s, %s) = %v, want %q", tt.mode, tt.platform, err, tt.want)
		}
	}
	if _, err := ParseMode("product"); err == nil || !strings.Contains(err.Error(), "product-preregistered") {
		t.Errorf("ParseMode error = %v", err)
	}
}

func TestBoardName(t *testing.T) {
	tests := []struct{ from, prefix, mac, imei, want, err string }{
		{"mac", "", "24:0a:c4:12:ab:ef", "", "240AC412ABEF", ""},
		{"mac", "sn-", "24:0a:c4:12:ab:ef", "", "sn-240AC412ABEF", ""},
		{"imei", "", "24:0a:c4:12:ab:ef", "868220785217709", "868220785217709", ""},
		{"imei", "", "24:0a:c4:12:ab:ef", "", "", "no IMEI"},
		{"mac", "", "", "868220785217709", "", "no MAC"},
		{"sn", "", "x", "y", "", "mac or imei"},
	}
	for _, tt := range tests {
		got, err := BoardName(tt.from, tt.prefix, tt.mac, tt.imei)
		if got != tt.want || (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("BoardName(%s,%s,%s,%s) = %q, %v", tt.from, tt.prefix, tt.mac, tt.imei, got, err)
		}
	}
}
