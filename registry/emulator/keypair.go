package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
)

// NewKeyPair makes up a SecretId/SecretKey pair shaped like Tencent Cloud's
// (an "AKID" id of 36 characters and a 32-character key), for an emulator
// started without keys in the environment.
func NewKeyPair() (secretID, secretKey string) {
	return "AKID" + randomAlnum(32), randomAlnum(32)
}

func randomAlnum(n int) string {
	var out strings.Builder
	for out.Len() < n {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		for _, c := range base64.RawStdEncoding.EncodeToString(b) {
			if c != '+' && c != '/' && out.Len() < n {
				out.WriteRune(c)
			}
		}
	}
	return out.String()
}
