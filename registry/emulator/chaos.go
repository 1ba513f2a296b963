package emulator

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Chaos is a bad day on the network to rehearse (`iotburn sim cloud
// --fault …`), on every request, at random:
//
//	5xx=P        the request never reaches the cloud: a gateway answers 503
//	             Service Unavailable, as a load balancer does, not the
//	             vendor's JSON (no vendor source; the harsher of the two)
//	latency=D    every request waits D first (a long route, a slow region)
//	throttle=P   the vendor's own throttling answer (Tencent
//	             RequestLimitExceeded, Aliyun Throttling.User), as its rate
//	             limiter gives it
//	drop-conn=P  the connection is closed with no answer (a reset route)
//
// The clients must retry what is safe to retry, with back-off, and never
// send a create whose outcome they do not know twice.
type Chaos struct {
	Err5xx, Throttle, DropConn float64
	Latency                    time.Duration
	Seed                       uint64
}

// ParseChaos reads the --fault value of sim cloud.
func ParseChaos(s string) (Chaos, error) {
	var c Chaos
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return c, fmt.Errorf("--fault %q: write key=value (5xx=0.05, latency=200ms, throttle=0.02, drop-conn=0.01)", kv)
		}
		var err error
		switch k {
		case "5xx":
			c.Err5xx, err = prob(v)
		case "throttle":
			c.Throttle, err = prob(v)
		case "drop-conn":
			c.DropConn, err = prob(v)
		case "latency":
			c.Latency, err = time.ParseDuration(v)
			if err == nil && c.Latency < 0 {
				err = fmt.Errorf("negative")
			}
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			return c, fmt.Errorf("--fault: unknown fault %q (5xx, latency, throttle, drop-conn, seed)", k)
		}
		if err != nil {
			return c, fmt.Errorf("--fault %s: %v", kv, err)
		}
	}
	return c, nil
}

func prob(s string) (float64, error) {
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || p < 0 || p > 1 {
		return 0, fmt.Errorf("%q is not a probability between 0 and 1", s)
	}
	return p, nil
}

// WithChaos serves the emulator through the bad day c describes.
func (e *Emulator) WithChaos(c Chaos) http.Handler {
	seed := c.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	ch := &chaosHandler{e: e, c: c, rng: rand.New(rand.NewPCG(seed, 0))}
	return ch
}

type chaosHandler struct {
	e   *Emulator
	c   Chaos
	mu  sync.Mutex
	rng *rand.Rand
}

func (h *chaosHandler) chance(p float64) bool {
	if p <= 0 {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rng.Float64() < p
}

func (h *chaosHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.c.Latency > 0 {
		select {
		case <-time.After(h.c.Latency):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case h.chance(h.c.DropConn):
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // net/http closes the connection unanswered
	case h.chance(h.c.Err5xx):
		http.Error(w, "503 Service Temporarily Unavailable", http.StatusServiceUnavailable)
		return
	case h.chance(h.c.Throttle):
		if action, code := throttleFor(r); action != "" {
			h.e.InjectFault(action, 1, code)
		}
	}
	h.e.ServeHTTP(w, r)
}

// throttleFor is the request's action and its vendor's throttling code,
// reading (and putting back) an RPC request's form body for its Action.
func throttleFor(r *http.Request) (action, code string) {
	if a := r.Header.Get("X-TC-Action"); a != "" {
		return a, "RequestLimitExceeded"
	}
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return "", ""
	}
	for _, src := range []string{r.URL.RawQuery, string(body)} {
		for _, kv := range strings.Split(src, "&") {
			if v, ok := strings.CutPrefix(kv, "Action="); ok {
				return v, "Throttling.User"
			}
		}
	}
	return "", ""
}
