package templates

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/iotburn/iotburn/registry"
)

// UserTemplate renders a user's Go text/template. The template sees the
// credential's fields (.Platform .ProductID .DeviceName .DeviceSecret .Region)
// and the functions atq (AT-quote a parameter) and fingerprint.
type UserTemplate struct {
	path string
	tmpl *template.Template
}

// LoadUserTemplate parses FILE once; errors carry the template's line number.
func LoadUserTemplate(path string) (*UserTemplate, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	t, err := template.New(filepath.Base(path)).Option("missingkey=error").Funcs(template.FuncMap{
		"atq":         atQuote,
		"fingerprint": registry.Fingerprint,
	}).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", path, err)
	}
	return &UserTemplate{path: path, tmpl: t}, nil
}

func (u *UserTemplate) Name() string { return "template:" + u.path }

// Ext keeps the template's own extension (device.json.tmpl → .json), or .txt.
func (u *UserTemplate) Ext() string {
	base := strings.TrimSuffix(filepath.Base(u.path), ".tmpl")
	if ext := filepath.Ext(base); ext != "" {
		return ext
	}
	return ".txt"
}

func (u *UserTemplate) Render(c registry.Credential) ([]byte, error) {
	// Its data has no certificate fields, so a certificate device's
	// image could only lack them.
	if err := refuseCert("template", c); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := u.tmpl.Execute(&buf, c); err != nil {
		return nil, fmt.Errorf("template %s for device %s: %w", u.path, c.DeviceName, err)
	}
	return buf.Bytes(), nil
}
