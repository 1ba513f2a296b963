package provision

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
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

func TestReadNames(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  []string
	}{
		{name: "plain", in: "dev1\ndev2\r\ndev3\n\n\n", want: []string{"dev1", "dev2", "dev3"}},
		{name: "comments and BOM", in: "\ufeff# batch 7\ndev1\n# x\ndev2\n", want: []string{"dev1", "dev2"}},
		{name: "csv header picks column", in: "sn,DeviceName,imei\nS1,dev-a,1\nS2,dev-b,2\n", want: []string{"dev-a", "dev-b"}},
		{name: "csv no header first column", in: "dev-a,x\ndev-b,y\n", want: []string{"dev-a", "dev-b"}},
		{name: "csv quoted", in: "name\n\"dev:1\"\n", want: []string{"dev:1"}},
		{name: "duplicate", in: "a1\nb2\na1\n", wantErr: []string{"line 3", "duplicate of line 1"}},
		{name: "empty middle line", in: "a1\n\nb2\n", wantErr: []string{"line 2: empty name"}},
		{name: "too long", in: "ok\n" + strings.Repeat("x", 49) + "\n", wantErr: []string{"line 2", "1-48"}},
		{name: "bad char", in: "ok\nsp ace\nslash/\n", wantErr: []string{"2 bad name(s)", "line 2", "line 3"}},
		{name: "empty file", in: "\n\n", wantErr: []string{"no device names"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadNames(strings.NewReader(tt.in), validateTencent)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("want error, got %v", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzReadNames(f *testing.F) {
	f.Add("a\nb\n")
	f.Add("name,sn\n\"x,y\",1\n")
	f.Add("\"unterminated\n")
	f.Fuzz(func(t *testing.T, in string) {
		names, err := ReadNames(strings.NewReader(in), validateTencent)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] || validateTencent(n) != nil {
				t.Fatalf("accepted bad or duplicate name %q", n)
			}
			seen[n] = true
		}
	})
}
