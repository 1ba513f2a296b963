package at

import (
	"strings"
	"testing"
)

// The wire log shows what went out and came back, each secret replaced by
// its fingerprint (sha256 of the secret, first 8 hex digits: here of
// "7WmFA/MEs+Fy+32QwJWtYw==" → 2450d9d7, and so on,
// each computed with `echo -n SECRET | sha256sum`).
func TestMasked(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","7WmFA/MEs+Fy+32QwJWtYw=="`, `AT+TCDEVINFOSET=1,"ABCDEFGHIJ","dev001","[secret ` + "2450d9d7" + `]"`},
		{`AT+TCPRDINFOSET=1,"S3EUVBRJLB","8XzjN8rfgFVGDTNTUGau4snA","device_1234"`, `AT+TCPRDINFOSET=1,"S3EUVBRJLB","[secret ` + "110ccebb" + `]","device_1234"`},
		{`AT+IDMAU="a1X2bEnP82z","example1","ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe",""`, `AT+IDMAU="a1X2bEnP82z","example1","[secret ` + "19af103f" + `]",""`},
		{`+IDMAU:a1X2bEnP82z,example1,ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe,ps12345`, `+IDMAU:a1X2bEnP82z,example1,"[secret ` + "19af103f" + `]","[secret ` + "f8b356e8" + `]"`},
		{`AT+TCDEVINFOSET=1,"P","a\",b","x,y"`, `AT+TCDEVINFOSET=1,"P","a\",b","[secret ` + "968e772c" + `]"`},
		{`AT+TCSUBDEVINFOSET=0,"SUBPRODUC1","sub1","7WmFA/MEs+Fy+32QwJWtYw=="`, `AT+TCSUBDEVINFOSET=0,"SUBPRODUC1","sub1","[secret ` + "2450d9d7" + `]"`},
		{`AT+TCGWBIND=0,"SUBPRODUC1","sub1","7WmFA/MEs+Fy+32QwJWtYw=="`, `AT+TCGWBIND=0,"SUBPRODUC1","sub1","[secret ` + "2450d9d7" + `]"`},
		{`AT+TCGWBIND=0,"SUBPRODUC1","sub1"`, `AT+TCGWBIND=0,"SUBPRODUC1","sub1"`},
		{`AT+TCMODULE`, `AT+TCMODULE`},
		{`+TCDEVINFOSET:1,"ABCDEFGHIJ","dev001",123`, `+TCDEVINFOSET:1,"ABCDEFGHIJ","dev001",123`},
	} {
		got := Masked(tc.in)
		if got != tc.want {
			t.Errorf("Masked(%q)\n = %q\nwant %q", tc.in, got, tc.want)
		}
		for _, s := range []string{"7WmFA/MEs", "ga7XA6Kdl", "8XzjN8rf", "ps12345"} {
			if strings.Contains(got, s) {
				t.Errorf("Masked(%q) shows a secret", tc.in)
			}
		}
	}
}
