package sim

import (
	"fmt"
	"math/rand/v2"
)

// newMAC makes a station MAC under Espressif's 24:0a:c4 OUI, as the boards the
// simulator imitates carry. Random, so two farms on one line rarely collide;
// the farm checks uniqueness among its own boards.
func newMAC() string {
	return fmt.Sprintf("24:0a:c4:%02x:%02x:%02x", rand.IntN(256), rand.IntN(256), rand.IntN(256))
}

// newIMEI makes a 15-digit IMEI: an 8-digit TAC starting 86 (the range
// Chinese modules carry), a 6-digit serial, and the Luhn check digit.
func newIMEI() string {
	body := fmt.Sprintf("86%06d%06d", rand.IntN(1_000_000), rand.IntN(1_000_000))
	return body + string(rune('0'+luhnDigit(body)))
}

// luhnDigit is the check digit that makes body+digit pass the Luhn test.
func luhnDigit(body string) int {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 { // doubled: every second digit counting from the check digit
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// luhnValid reports whether a digit string passes the Luhn test.
func luhnValid(s string) bool {
	if len(s) < 2 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return luhnDigit(s[:len(s)-1]) == int(s[len(s)-1]-'0')
}
