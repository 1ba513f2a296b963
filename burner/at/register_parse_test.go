package at

import "testing"

// The doc prints AT+TCPRDINFOSET?'s strings bare, the simulator quoted.
func TestParsePrdInfo(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ProductInfo
		ok   bool
	}{
		{`1,CTQS08Y5LG,57,Dev01,ap-guangzhou`, ProductInfo{1, "CTQS08Y5LG", "Dev01", 57, "ap-guangzhou"}, true},
		{`1,"CTQS08Y5LG",57,"Dev01","ap-guangzhou"`, ProductInfo{1, "CTQS08Y5LG", "Dev01", 57, "ap-guangzhou"}, true},
		{`1, "S3EUVBRJLB", 0, "a\,b"`, ProductInfo{1, "S3EUVBRJLB", "a,b", 0, ""}, true},
		{`1,"P","57","d"`, ProductInfo{}, false}, // a quoted checksum is a secret, not a BCC
		{`1,"P",256,"d"`, ProductInfo{}, false},
		{`1,"P",57`, ProductInfo{}, false},
		{`x,"P",57,"d"`, ProductInfo{}, false},
	} {
		got, ok := parsePrdInfo(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parsePrdInfo(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
