package cmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iotburn/iotburn/registry/emulator"
)

// `image --format nvs --from-csv` is a drop-in for Espressif's generator: the
// same CSV gives the same bytes as the goldens it made (testdata/nvs/README.md).
func TestImageNVSFromCSVMatchesEspressif(t *testing.T) {
	golden := filepath.Join("..", "testdata", "nvs")
	for _, tt := range []struct{ csv, bin, size, version string }{
		{"strings_v2.csv", "strings_v1.bin", "0x3000", "1"},
		{"ints.csv", "ints_v2.bin", "0x3000", "2"},
		{"namespaces_v2.csv", "namespaces_v2.bin", "0x6000", "2"},
		{"cred_tencent.csv", "cred_tencent.bin", "0x6000", "2"},
	} {
		t.Run(tt.bin, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "nvs.bin")
			if _, _, err := run(t, "image", "--format", "nvs", "--from-csv", filepath.Join(golden, tt.csv), "--size", tt.size, "--nvs-version", tt.version, "--out", out); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(golden, tt.bin))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s differs from Espressif's %s", out, tt.bin)
			}
			if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}

func TestImageNVSBadCSVWritesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, csv, size, want string }{
		{"unknown type", "key,type,encoding,value\nns,namespace,,\nk,blob,u8,1\n", "0x3000", "line 3"},
		{"long key", "key,type,encoding,value\nns,namespace,,\nabcdefghijklmnop,data,u8,1\n", "0x3000", "line 3"},
		{"value too large", "key,type,encoding,value\nns,namespace,,\nk,data,u8,256\n", "0x3000", "line 3"},
		{"partition too small", "key,type,encoding,value\nns,namespace,,\nk,data,string," + strings.Repeat("x", 3000) + "\nk2,data,string," + strings.Repeat("y", 3000) + "\nk3,data,string," + strings.Repeat("z", 3000) + "\n", "0x3000", "--size"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			csv := writeFile(t, dir, "in.csv", tt.csv)
			out := filepath.Join(dir, "out.bin")
			_, _, err := run(t, "image", "--format", "nvs", "--from-csv", csv, "--size", tt.size, "--out", out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("a file was written for a bad CSV")
			}
		})
	}
}

func TestImagePerProduct(t *testing.T) {
	emu, endpoint := startCloud(t, 10*time.Millisecond)
	if err := emu.SetProductSettings("tencent", "ABCDEFGHIJ", emulator.ProductSettings{DynamicRegistration: true}); err != nil {
		t.Fatal(err)
	}
	secret, _ := emu.ProductSecret("tencent", "ABCDEFGHIJ")
	dir := t.TempDir()
	if _, _, err := run(t, "image", "--format", "nvs", "--product", "ABCDEFGHIJ", "--per-product", "--size", "0x3000", "--out", dir, "--endpoint", endpoint); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join(dir, "ABCDEFGHIJ.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(img, []byte(secret)) || !bytes.Contains(img, []byte("product_secret")) {
		t.Fatal("per-product partition lacks the product secret")
	}
	_, _, err = run(t, "image", "--format", "tencent-at", "--product", "ABCDEFGHIJ", "--per-product", "--out", dir, "--endpoint", endpoint)
	if err == nil || !strings.Contains(err.Error(), "device name") {
		t.Fatalf("tencent-at per product: %v, want it refused for want of a device name", err)
	}
}
