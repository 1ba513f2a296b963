package sim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Chaos is a bad day to rehearse, for every board of a farm (`iotburn sim
// device --fault …`): the ordinary misbehaviour of real boards, cables and
// hubs, at random. None of it comes from a vendor source; it is what a
// factory line sees, made repeatable by Seed.
//
//	drop=P          each chunk of bytes the board receives is lost with
//	                probability P (a noisy cable, a half-received command)
//	garble=P        each chunk it sends is noise instead, with probability P
//	stall=D[@P]     before each request, with probability P (default 0.01),
//	                the board hangs for D (a busy or wedged firmware)
//	unplug-after=D  D after each plug-in the board is pulled (the USB link
//	                goes), and plugged back in a second later
//	reboot-after=D  D after each plug-in the board power-cycles
//	glitch=CMD      the board answers ERROR, once per power cycle, to the
//	                first AT+CMD it is sent (AT boards; e.g. glitch=tcmodule)
type Chaos struct {
	Drop, Garble float64
	Stall        time.Duration
	StallP       float64
	UnplugAfter  time.Duration
	RebootAfter  time.Duration
	Glitch       string // the AT command, upper case, without "AT+"
	Seed         uint64 // 0: random
}

// IsZero reports a plan that does nothing.
func (c Chaos) IsZero() bool { return c == Chaos{} || c == Chaos{Seed: c.Seed} }

// ParseChaos reads the --fault value: comma-separated key=value pairs.
func ParseChaos(s string) (Chaos, error) {
	var c Chaos
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return c, fmt.Errorf("--fault %q: write key=value (drop=0.01, garble=0.01, stall=2s, unplug-after=30s, reboot-after=1m, glitch=tcmodule)", kv)
		}
		var err error
		switch k {
		case "drop":
			c.Drop, err = probability(v)
		case "garble":
			c.Garble, err = probability(v)
		case "stall":
			d, p, hasP := strings.Cut(v, "@")
			if c.Stall, err = duration(d); err == nil {
				c.StallP = 0.01
				if hasP {
					c.StallP, err = probability(p)
				}
			}
		case "unplug-after":
			c.UnplugAfter, err = duration(v)
		case "reboot-after":
			c.RebootAfter, err = duration(v)
		case "glitch":
			c.Glitch = strings.ToUpper(strings.TrimPrefix(strings.ToUpper(v), "AT+"))
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			return c, fmt.Errorf("--fault: unknown fault %q (drop, garble, stall, unplug-after, reboot-after, glitch, seed)", k)
		}
		if err != nil {
			return c, fmt.Errorf("--fault %s: %w", kv, err)
		}
	}
	return c, nil
}

func probability(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p < 0 || p > 1 {
		return 0, fmt.Errorf("%q is not a probability between 0 and 1", s)
	}
	return p, nil
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a duration such as 500ms or 2s", s)
	}
	return d, nil
}

// chaosRand is a board's own random source: one per board, so a seed gives
// the same bad day on every run.
func chaosRand(seed uint64, index int) *rand.Rand {
	if seed == 0 {
		seed = rand.Uint64()
	}
	return rand.New(rand.NewPCG(seed, uint64(index)))
}
