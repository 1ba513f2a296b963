package esprom

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The JSON's shape is esptool's (targets/stub_flasher/1/esp32.json: base64
// text and data, their load addresses, the entry point); the bytes here are
// made up, not Espressif's stub.
func TestLoadStub(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "esp32.json")
	os.WriteFile(good, []byte(`{"entry": 1074521580, "text": "AAECAw==", "text_start": 1074520064, "data": "BAU=", "data_start": 1073605544, "bss_start": 1073528832}`), 0o600)
	s, err := LoadStub(good)
	if err != nil {
		t.Fatal(err)
	}
	if s.Entry != 0x400BE5EC || s.TextStart != 0x400BE000 || string(s.Text) != "\x00\x01\x02\x03" || s.DataStart != 0x3FFDEBA8 || string(s.Data) != "\x04\x05" {
		t.Errorf("stub %+v", s)
	}
	for name, body := range map[string]string{
		"not json":   "{",
		"no entry":   `{"text": "AAE=", "text_start": 1}`,
		"bad base64": `{"text": "!!", "text_start": 1, "entry": 2}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := LoadStub(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := LoadStub(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "stub_flasher/1/esp32.json") {
		t.Errorf("a missing stub file: %v", err)
	}
}
