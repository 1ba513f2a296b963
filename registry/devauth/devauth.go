// Package devauth is the device side of the clouds' authentication schemes:
// dynamic registration with a product-level secret (Tencent IoT Hub
// /device/register and the legacy /register/dev; Alibaba Cloud IoT
// /auth/register/device over HTTPS and authType=register|regnwl over MQTT),
// the MQTT CONNECT credentials a device derives from its secret, and the
// mutual-TLS login of a device with an X.509 certificate (cert.go).
//
// The simulated boards use it to register themselves and `iotburn verify`
// uses it to prove a burned credential really logs in. Every algorithm follows
// shared/reference/tencent.md §3–§4 and aliyun.md §3–§4 and is tested against
// their published worked examples.
//
// Secrets are arguments and results, never part of an error: an error carries
// the vendor's code and message and what was being done, nothing more.
package devauth

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Error is a refusal answered by the platform: its code and message as the
// vendor sent them. Tencent codes are strings ("AuthFailure.SignatureFailure"),
// Aliyun's HTTPS registration answers a number (as a decimal string here), and
// an MQTT refusal is the CONNACK return code ("mqtt:4", "mqtt:5").
type Error struct {
	Platform string // "tencent" or "aliyun"
	Op       string // what was being done, e.g. "dynamic registration"
	Code     string
	Message  string
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	return fmt.Sprintf("%s %s refused: %s: %s", e.Platform, e.Op, e.Code, msg)
}

// Refused reports whether err is a refusal from the platform (as opposed to a
// transport failure, after which the outcome is unknown), and returns it.
func Refused(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// httpClient is used by the register calls; a context bounds each call.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// maxAnswer bounds what is read of an answer: registration answers are a few
// hundred bytes, so anything bigger is not the cloud.
const maxAnswer = 64 << 10

func readAnswer(resp *http.Response) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAnswer {
		return nil, fmt.Errorf("answer larger than %d bytes", maxAnswer)
	}
	return b, nil
}

// snippet is a short, printable piece of an answer that could not be parsed,
// for the error message. Registration answers that fail to parse carry no
// secret we could decode, so showing their start is safe and helps debugging.
func snippet(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '.'
		}
		return r
	}, string(b))
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("answer is not the expected JSON (%v): %q", err, snippet(b))
	}
	return nil
}

// randomAlnum is n random letters and digits from crypto/rand.
func randomAlnum(n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	var b [64]byte
	for len(out) < n {
		if _, err := rand.Read(b[:]); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		for _, c := range b {
			// 248 = 4×62: rejecting above it keeps every character equally likely.
			if c < 248 && len(out) < n {
				out = append(out, chars[c%62])
			}
		}
	}
	return string(out)
}
