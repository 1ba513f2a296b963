// Package templates renders the image a board is burned with: an AT-command
// script, a device SDK's JSON file, a user's text/template or (templates/nvs)
// an ESP-IDF NVS partition.
package templates

import (
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
