package provision

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	devnames "github.com/iotburn/iotburn/provision/names"
)

// tencentRule is the Tencent name rule written out here independently of the
// client, so the test does not take its expectation from the code under test.
var tencentRule = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,48}$`)

func validateTencent(n string) error {
	if !tencentRule.MatchString(n) {
		return fmt.Errorf("%q: Tencent device names are 1-48 of a-z A-Z 0-9 : _ -", n)
	}
	return nil
}

// The wrappers read what package names reads (its own tests cover the
// formats) and keep its error kinds.
func TestReadNames(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		kind     error
	}{
		{name: "plain", in: "dev1\ndev2\r\ndev3\n\n\n", want: []string{"dev1", "dev2", "dev3"}},
		{name: "csv header picks column", in: "sn,DeviceName,imei\nS1,dev-a,1\nS2,dev-b,2\n", want: []string{"dev-a", "dev-b"}},
		{name: "issue 11 header", in: "Index,Serial Number,Remark\n1,SN001,\n2,SN002,\n", want: []string{"SN001", "SN002"}},
		{name: "unknown header", in: "Index,Code\n1,C1\n2,C2\n", kind: devnames.ErrHeader},
		{name: "duplicate", in: "a1\nb2\na1\n", kind: devnames.ErrDuplicate},
		{name: "bad char", in: "ok\nsp ace\n", kind: devnames.ErrInvalid},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadNames(strings.NewReader(tt.in), validateTencent)
			p := filepath.Join(dir, "n.csv")
			if werr := os.WriteFile(p, []byte(tt.in), 0o600); werr != nil {
				t.Fatal(werr)
			}
			gotFile, errFile := ReadNamesFile(p, validateTencent)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) || !errors.Is(errFile, tt.kind) {
					t.Fatalf("errors %v / %v, want %v", err, errFile, tt.kind)
				}
				return
			}
			if err != nil || errFile != nil {
				t.Fatal(err, errFile)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") || strings.Join(gotFile, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q and %q, want %q", got, gotFile, tt.want)
			}
		})
	}
}
