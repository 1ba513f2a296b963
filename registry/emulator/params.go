package emulator

// Request parameters of a JSON API call, read by exact key. encoding/json's
// struct decoding matches keys case-insensitively, which would accept
// "ProductId" where iotcloud 2018-06-14's DescribeDevice demands "ProductID";
// the cloud is case-sensitive, so the emulator is too.

import (
	"crypto/subtle"
	"encoding/json"
	"regexp"
)

type params map[string]json.RawMessage

var (
	tcDeviceNameRe = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,48}$`)
	productIDRe    = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)
)

func parseParams(body []byte) (params, *apiError) {
	p := params{}
	if len(body) == 0 {
		return p, nil
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, errf("InvalidParameter", "The request body is not a JSON object: %v.", err)
	}
	return p, nil
}

func (p params) has(key string) bool {
	v, ok := p[key]
	return ok && string(v) != "null"
}

// peek returns a string parameter or "" (for logging only).
func (p params) peek(key string) string {
	var s string
	json.Unmarshal(p[key], &s)
	return s
}

func (p params) str(key string) (string, *apiError) {
	if !p.has(key) {
		return "", errf("MissingParameter", "The request is missing a required parameter `%s`.", key)
	}
	var s string
	if err := json.Unmarshal(p[key], &s); err != nil {
		return "", errf("InvalidParameter", "The parameter `%s` must be a string.", key)
	}
	return s, nil
}

func (p params) optStr(key string) (string, bool, *apiError) {
	if !p.has(key) {
		return "", false, nil
	}
	s, aerr := p.str(key)
	return s, aerr == nil, aerr
}

// uint reads an optional unsigned integer; absent (or 0) gives def.
func (p params) uint(key string, def uint64) (uint64, *apiError) {
	if !p.has(key) {
		return def, nil
	}
	var n uint64
	if err := json.Unmarshal(p[key], &n); err != nil {
		return 0, errf("InvalidParameter", "The parameter `%s` must be an unsigned integer.", key)
	}
	if n == 0 {
		return def, nil
	}
	return n, nil
}

func (p params) strs(key string) ([]string, *apiError) {
	if !p.has(key) {
		return nil, errf("MissingParameter", "The request is missing a required parameter `%s`.", key)
	}
	var list []string
	if err := json.Unmarshal(p[key], &list); err != nil {
		return nil, errf("InvalidParameter", "The parameter `%s` must be an array of strings.", key)
	}
	return list, nil
}

func subtleEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
