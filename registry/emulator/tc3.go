package emulator

// TC3-HMAC-SHA256, Tencent Cloud API 3.0's request signature, written from the
// published algorithm (reference/tencent.md §1.1), not from the SDK: the SDK
// talking to this verifier in the tests is what proves the two sides agree.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	tc3Algorithm  = "TC3-HMAC-SHA256"
	tc3Terminator = "tc3_request"
	// tc3MaxSkew is how far X-TC-Timestamp may be from the server clock; the
	// cloud refuses older signatures so that a captured request cannot be replayed.
	tc3MaxSkew = 300 * time.Second
)

// tc3Auth is a parsed Authorization header.
type tc3Auth struct {
	SecretID      string
	Date          string // credential scope date, "2006-01-02"
	Service       string
	SignedHeaders []string // lowercase, in the order the client signed them
	Signature     string   // lowercase hex
}

// parseTC3Authorization parses
// "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex".
func parseTC3Authorization(h string) (tc3Auth, error) {
	var a tc3Auth
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != tc3Algorithm {
		return a, errors.New("the Authorization header must start with " + tc3Algorithm)
	}
	var cred, signed, sig string
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, fmt.Errorf("malformed Authorization part %q", part)
		}
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			signed = v
		case "Signature":
			sig = v
		default:
			return a, fmt.Errorf("unknown Authorization part %q", k)
		}
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] != tc3Terminator {
		return a, errors.New("the Credential must be SecretId/Date/Service/tc3_request")
	}
	a.SecretID, a.Date, a.Service = parts[0], parts[1], parts[2]
	if signed == "" {
		return a, errors.New("SignedHeaders is empty")
	}
	for _, name := range strings.Split(signed, ";") {
		if name == "" || name != strings.ToLower(name) {
			return a, errors.New("SignedHeaders must be lowercase names separated by ';'")
		}
		a.SignedHeaders = append(a.SignedHeaders, name)
	}
	if len(sig) != 64 || strings.Trim(sig, "0123456789abcdef") != "" {
		return a, errors.New("the Signature must be 64 lowercase hex digits")
	}
	a.Signature = sig
	return a, nil
}

// tc3Input is the part of an HTTP request the signature covers.
type tc3Input struct {
	Method string
	Query  string // raw query string as sent ("" for POST)
	Host   string // the Host header as sent, port included
	Header http.Header
	Body   []byte
}

// tc3CanonicalRequest rebuilds the canonical request from what was actually
// sent: each signed header's value lowercased and trimmed, in the order the
// client listed them.
func tc3CanonicalRequest(in tc3Input, signed []string) string {
	var hdrs strings.Builder
	for _, name := range signed {
		v := in.Host
		if name != "host" {
			v = strings.Join(in.Header.Values(name), ",")
		}
		hdrs.WriteString(name)
		hdrs.WriteByte(':')
		hdrs.WriteString(strings.ToLower(strings.TrimSpace(v)))
		hdrs.WriteByte('\n')
	}
	payload := in.Body
	// The SDK's UnsignedPayload option signs this constant instead of the body.
	if in.Header.Get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" {
		payload = []byte("UNSIGNED-PAYLOAD")
	}
	return strings.Join([]string{
		in.Method, "/", in.Query, hdrs.String(), strings.Join(signed, ";"), sha256Hex(payload),
	}, "\n")
}

// tc3StringToSign is the second step of the algorithm.
func tc3StringToSign(timestamp, date, service, canonicalRequest string) string {
	return tc3Algorithm + "\n" + timestamp + "\n" + date + "/" + service + "/" + tc3Terminator + "\n" +
		sha256Hex([]byte(canonicalRequest))
}

// tc3Signature derives the signing key from the secret key and signs.
func tc3Signature(secretKey, date, service, stringToSign string) string {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	k = hmacSHA256(k, tc3Terminator)
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

// tc3Authorization formats the header a client sends; used by the tests'
// hand-built requests and the fuzzer.
func tc3Authorization(secretID, date, service string, signed []string, signature string) string {
	return fmt.Sprintf("%s Credential=%s/%s/%s/%s, SignedHeaders=%s, Signature=%s",
		tc3Algorithm, secretID, date, service, tc3Terminator, strings.Join(signed, ";"), signature)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// tc3Verifier checks requests the way the cloud does. Service and clock are
// parameters so the published worked example (service cvm, 2019) can be
// checked with the same code that guards the emulator.
type tc3Verifier struct {
	Service   string
	Now       func() time.Time
	MaxSkew   time.Duration
	SecretKey func(secretID string) (key string, ok bool)
}

// verify returns nil when the request is signed by a known key, or the
// Tencent error the cloud would answer with.
func (v *tc3Verifier) verify(in tc3Input) *apiError {
	h := in.Header.Get("Authorization")
	if h == "" {
		return errf("AuthFailure.SignatureFailure", "The Authorization header is missing: sign the request with %s.", tc3Algorithm)
	}
	a, err := parseTC3Authorization(h)
	if err != nil {
		return errf("AuthFailure.InvalidAuthorization", "The Authorization header is malformed: %v.", err)
	}
	ts := in.Header.Get("X-TC-Timestamp")
	if ts == "" {
		return errf("MissingParameter", "The request is missing the X-TC-Timestamp header.")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return errf("InvalidParameter", "X-TC-Timestamp must be a Unix time in seconds.")
	}
	signedAt := time.Unix(sec, 0)
	if skew := v.Now().Sub(signedAt); skew > v.MaxSkew || skew < -v.MaxSkew {
		return errf("AuthFailure.SignatureExpire", "The signature expired: X-TC-Timestamp is %s away from the server time (limit %s).",
			skew.Round(time.Second), v.MaxSkew)
	}
	key, ok := v.SecretKey(a.SecretID)
	if !ok {
		return errf("AuthFailure.SecretIdNotFound", "The SecretId is not found, please ensure that your SecretId is correct.")
	}
	if a.Service != v.Service {
		return errf("AuthFailure.SignatureFailure", "The credential scope names service %q; this endpoint is %q.", a.Service, v.Service)
	}
	if want := signedAt.UTC().Format("2006-01-02"); a.Date != want {
		return errf("AuthFailure.SignatureFailure", "The credential scope date %s is not the UTC date of X-TC-Timestamp (%s).", a.Date, want)
	}
	if !slices.Contains(a.SignedHeaders, "content-type") || !slices.Contains(a.SignedHeaders, "host") {
		return errf("AuthFailure.SignatureFailure", "SignedHeaders must include content-type and host.")
	}
	canon := tc3CanonicalRequest(in, a.SignedHeaders)
	want := tc3Signature(key, a.Date, a.Service, tc3StringToSign(ts, a.Date, a.Service, canon))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return errf("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.")
	}
	return nil
}
