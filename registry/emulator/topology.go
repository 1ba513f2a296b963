package emulator

import "sort"

// topology is which sub-devices hang under which gateway, for both vendors:
// each gateway's set, and each sub-device's one gateway. Keys are
// "<product>/<device name>" (topoKey). It is rebuilt from journal records
// (topoRec), so it holds nothing the journal does not.
type topology struct {
	subs   map[string]map[string]bool // gateway → its sub-devices
	parent map[string]string          // sub-device → its gateway
}

// topoRec is one journal record of topology: sub-devices added to or removed
// from one gateway.
type topoRec struct {
	Gateway string   `json:"g"`
	Subs    []string `json:"s"`
}

func newTopology() topology {
	return topology{subs: map[string]map[string]bool{}, parent: map[string]string{}}
}

func topoKey(product, name string) string { return product + "/" + name }

// add puts subs under g, moving any that hung under another gateway.
func (t *topology) add(g string, subs []string) {
	for _, k := range subs {
		if old, ok := t.parent[k]; ok && old != g {
			t.detach(old, k)
		}
		if t.subs[g] == nil {
			t.subs[g] = map[string]bool{}
		}
		t.subs[g][k] = true
		t.parent[k] = g
	}
}

// remove takes subs from under g (those under another gateway stay).
func (t *topology) remove(g string, subs []string) {
	for _, k := range subs {
		if t.parent[k] == g {
			t.detach(g, k)
		}
	}
}

func (t *topology) detach(g, k string) {
	delete(t.parent, k)
	delete(t.subs[g], k)
	if len(t.subs[g]) == 0 {
		delete(t.subs, g)
	}
}

// drop forgets a deleted device, as gateway or as sub-device.
func (t *topology) drop(k string) {
	for sub := range t.subs[k] {
		delete(t.parent, sub)
	}
	delete(t.subs, k)
	if g, ok := t.parent[k]; ok {
		t.detach(g, k)
	}
}

func (t *topology) has(g, k string) bool { return t.subs[g][k] }
func (t *topology) count(g string) int   { return len(t.subs[g]) }

func (t *topology) gatewayOf(k string) (string, bool) {
	g, ok := t.parent[k]
	return g, ok
}

// list is g's sub-devices, sorted.
func (t *topology) list(g string) []string {
	out := make([]string, 0, len(t.subs[g]))
	for k := range t.subs[g] {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// records rebuild the topology, one per gateway, in gateway order.
func (t *topology) records() []topoRec {
	gws := make([]string, 0, len(t.subs))
	for g := range t.subs {
		gws = append(gws, g)
	}
	sort.Strings(gws)
	out := make([]topoRec, len(gws))
	for i, g := range gws {
		out[i] = topoRec{Gateway: g, Subs: t.list(g)}
	}
	return out
}
