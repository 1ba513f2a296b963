// Package templates renders the image a board is burned with: an AT-command
// script, a device SDK's JSON file, a user's text/template or (templates/nvs)
// an ESP-IDF NVS partition.
package templates

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/iotburn/iotburn/registry"
)

// Format turns one credential into the bytes written to a board or a file.
type Format interface {
	// Name is what --format takes ("tencent-at").
	Name() string
	// Ext is the file extension `iotburn image` gives the files it writes.
	Ext() string
	// Render returns the image. It holds the secret: callers write it 0600
	// and never log it.
	Render(c registry.Credential) ([]byte, error)
}

// builtin maps --format names to constructors; user templates ("template:FILE")
// are handled by Lookup.
var builtin = map[string]func() Format{
	"tencent-at":   func() Format { return TencentAT{} },
	"tencent-json": func() Format { return TencentJSON{} },
	"aliyun-at":    func() Format { return AliyunAT{} },
	"aliyun-json":  func() Format { return AliyunJSON{} },
}

// Names lists the built-in format names, for --help and errors.
func Names() []string {
	names := make([]string, 0, len(builtin)+1)
	for n := range builtin {
		names = append(names, n)
	}
	sort.Strings(names)
	return append(names, "template:FILE")
}

// Lookup finds a format by its --format name.
func Lookup(name string) (Format, error) {
	if path, ok := strings.CutPrefix(name, "template:"); ok {
		return LoadUserTemplate(path)
	}
	if f, ok := builtin[name]; ok {
		return f(), nil
	}
	return nil, fmt.Errorf("unknown format %q: use one of %s", name, strings.Join(Names(), ", "))
}

// productLevel reports a product-level credential (registry.Credential):
// a ProductSecret and no DeviceSecret. Its images carry the product secret
// and the board's name, and the board registers itself to get the rest.
func productLevel(c registry.Credential) bool { return c.ProductSecret != "" && c.DeviceSecret == "" }

// ErrNoCertForm marks a certificate credential (registry.Credential.IsCert)
// given to a format that has no place for a certificate and its key: the
// image would hold no way to log in, so it is refused before anything is
// written.
var ErrNoCertForm = errors.New("the format has no place for a device certificate")

// CertCarrier is implemented by the formats that can carry a certificate
// credential (its certificate and private key) as well as a key.
type CertCarrier interface {
	CarriesCert() bool
}

// CarriesCert reports whether f can carry a certificate credential.
func CarriesCert(f Format) bool {
	c, ok := f.(CertCarrier)
	return ok && c.CarriesCert()
}

// KitCarrier is implemented by the formats that can carry a gateway's kit
// (registry.Kit) beside its own credential, for the platform's firmware.
type KitCarrier interface {
	CarriesKit(platform string) bool
}

// CarriesKit reports whether f can carry a gateway's kit on platform.
func CarriesKit(f Format, platform string) bool {
	c, ok := f.(KitCarrier)
	return ok && c.CarriesKit(platform)
}

// SubDeviceCarrier is implemented by the formats that can hold a
// sub-device's credential alone (registry.Credential.SubDevice: its
// product and name, no secret). The AT scripts cannot: every AT command
// that stores a device's identity takes its secret.
type SubDeviceCarrier interface {
	CarriesSubDevice() bool
}

// CarriesSubDevice reports whether f can hold a sub-device's credential.
func CarriesSubDevice(f Format) bool {
	c, ok := f.(SubDeviceCarrier)
	return ok && c.CarriesSubDevice()
}

// refuseCert is the first check of every key-only format's Render.
func refuseCert(format string, c registry.Credential) error {
	if c.IsCert() {
		return fmt.Errorf("%s: device %s is a certificate device: %w", format, c.DeviceName, ErrNoCertForm)
	}
	return nil
}

// File is one file of a credential's image, named relative to the
// directory the images go to.
type File struct {
	Name string
	Data []byte // holds the secret: write it 0600
}

// FileSet is implemented by formats whose image of a credential can be
// more than one file (the device SDK's device_info.json and, for a
// certificate device, its certificate and key files).
type FileSet interface {
	Files(c registry.Credential) ([]File, error)
}

// Files is the image of c as files: the FileSet's, or the one file Render
// makes, named after the device.
func Files(f Format, c registry.Credential) ([]File, error) {
	if fs, ok := f.(FileSet); ok {
		return fs.Files(c)
	}
	img, err := f.Render(c)
	if err != nil {
		return nil, err
	}
	return []File{{Name: c.DeviceName + f.Ext(), Data: img}}, nil
}
