package emulator

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The worked example of Tencent's API 3.0 signature doc (reference/tencent.md
// §1.2): all three published variants.
const (
	exBody      = `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	exTimestamp = "1551113065"
	exSecretID  = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******"
)

func exampleInput() tc3Input {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-TC-Action", "DescribeInstances")
	h.Set("X-TC-Version", "2017-03-12")
	h.Set("X-TC-Region", "ap-guangzhou")
	h.Set("X-TC-Timestamp", exTimestamp)
	return tc3Input{Method: "POST", Host: "cvm.tencentcloudapi.com", Header: h, Body: []byte(exBody)}
}

func TestTC3PublishedExample(t *testing.T) {
	if got := sha256Hex([]byte(exBody)); got != "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064" {
		t.Fatalf("HashedRequestPayload = %s", got)
	}
	rows := []struct {
		name, key  string
		signed     []string
		canonHash  string
		signature  string
		wantHeader string // the published Authorization, where the doc prints it
	}{
		{"row1", "Gu5t9xGARNpq86cd98joQYCN3*******", []string{"content-type", "host"},
			"5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
			"2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
			"TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"},
		{"row2-x-tc-action", "Gu5t9xGARNpq86cd98joQYCN3*******", []string{"content-type", "host", "x-tc-action"},
			"7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84",
			"be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3", ""},
		{"row3-intl", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", []string{"content-type", "host"},
			"5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031",
			"72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168", ""},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			in := exampleInput()
			canon := tc3CanonicalRequest(in, r.signed)
			if got := sha256Hex([]byte(canon)); got != r.canonHash {
				t.Fatalf("hash(CanonicalRequest) = %s, want %s\n%s", got, r.canonHash, canon)
			}
			sts := tc3StringToSign(exTimestamp, "2019-02-25", "cvm", canon)
			if got := tc3Signature(r.key, "2019-02-25", "cvm", sts); got != r.signature {
				t.Fatalf("signature = %s, want %s", got, r.signature)
			}
			auth := tc3Authorization(exSecretID, "2019-02-25", "cvm", r.signed, r.signature)
			if r.wantHeader != "" && auth != r.wantHeader {
				t.Fatalf("Authorization =\n%s\nwant\n%s", auth, r.wantHeader)
			}
			in.Header.Set("Authorization", auth)

			signedAt := time.Unix(1551113065, 0)
			v := tc3Verifier{Service: "cvm", MaxSkew: tc3MaxSkew,
				Now:       func() time.Time { return signedAt.Add(time.Minute) },
				SecretKey: func(id string) (string, bool) { return r.key, id == exSecretID }}
			if err := v.verify(in); err != nil {
				t.Fatalf("published request rejected: %v", err)
			}

			// The same request, each with one thing wrong.
			bad := []struct {
				name, code string
				change     func(*tc3Input, *tc3Verifier)
			}{
				{"body", "AuthFailure.SignatureFailure", func(in *tc3Input, _ *tc3Verifier) { in.Body = []byte(strings.Replace(exBody, "1", "2", 1)) }},
				{"host port", "AuthFailure.SignatureFailure", func(in *tc3Input, _ *tc3Verifier) { in.Host += ":443" }},
				{"content-type", "AuthFailure.SignatureFailure", func(in *tc3Input, _ *tc3Verifier) { in.Header.Set("Content-Type", "application/json") }},
				{"service", "AuthFailure.SignatureFailure", func(_ *tc3Input, v *tc3Verifier) { v.Service = "iotcloud" }},
				{"key", "AuthFailure.SignatureFailure", func(_ *tc3Input, v *tc3Verifier) {
					v.SecretKey = func(string) (string, bool) { return "wrong", true }
				}},
				{"unknown id", "AuthFailure.SecretIdNotFound", func(_ *tc3Input, v *tc3Verifier) {
					v.SecretKey = func(string) (string, bool) { return "", false }
				}},
				{"late", "AuthFailure.SignatureExpire", func(_ *tc3Input, v *tc3Verifier) {
					v.Now = func() time.Time { return signedAt.Add(301 * time.Second) }
				}},
				{"early", "AuthFailure.SignatureExpire", func(_ *tc3Input, v *tc3Verifier) {
					v.Now = func() time.Time { return signedAt.Add(-301 * time.Second) }
				}},
				{"no auth", "AuthFailure.SignatureFailure", func(in *tc3Input, _ *tc3Verifier) { in.Header.Del("Authorization") }},
				{"no timestamp", "MissingParameter", func(in *tc3Input, _ *tc3Verifier) { in.Header.Del("X-TC-Timestamp") }},
			}
			for _, b := range bad {
				in, v := exampleInput(), v
				in.Header.Set("Authorization", auth)
				b.change(&in, &v)
				err := v.verify(in)
				if err == nil || err.Code != b.code {
					t.Errorf("%s: got %v, want %s", b.name, err, b.code)
				}
			}
		})
	}
}

// A request signed with the Date of the signer's local time zone instead of
// UTC (the trap the doc warns about: 2019-02-26 in UTC+8) must be refused.
func TestTC3DateMustBeUTC(t *testing.T) {
	in := exampleInput()
	signed := []string{"content-type", "host"}
	canon := tc3CanonicalRequest(in, signed)
	sig := tc3Signature("k", "2019-02-26", "cvm", tc3StringToSign(exTimestamp, "2019-02-26", "cvm", canon))
	in.Header.Set("Authorization", tc3Authorization("id", "2019-02-26", "cvm", signed, sig))
	v := tc3Verifier{Service: "cvm", MaxSkew: tc3MaxSkew, Now: func() time.Time { return time.Unix(1551113065, 0) },
		SecretKey: func(string) (string, bool) { return "k", true }}
	if err := v.verify(in); err == nil || err.Code != "AuthFailure.SignatureFailure" {
		t.Fatalf("got %v", err)
	}
}

func TestParseTC3Authorization(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	tests := []struct {
		in string
		ok bool
	}{
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=content-type;host, Signature=" + sig, true},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request,SignedHeaders=content-type;host,Signature=" + sig, true},
		{"", false},
		{"TC3-HMAC-SHA1 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=host, Signature=" + sig, false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud, SignedHeaders=host, Signature=" + sig, false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/other, SignedHeaders=host, Signature=" + sig, false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=Host, Signature=" + sig, false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=, Signature=" + sig, false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=host, Signature=" + strings.ToUpper(sig), false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=host, Signature=abc", false},
		{"TC3-HMAC-SHA256 Credential=id/2020-01-01/iotcloud/tc3_request, SignedHeaders=host, Signature=" + sig + ", Extra=1", false},
		{"TC3-HMAC-SHA256 garbage", false},
	}
	for _, tt := range tests {
		a, err := parseTC3Authorization(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("%q: err = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if tt.ok && (a.SecretID != "id" || a.Service != "iotcloud" || a.Date != "2020-01-01" || a.Signature != sig) {
			t.Errorf("%q: parsed %+v", tt.in, a)
		}
	}
}
