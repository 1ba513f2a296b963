package audit

import (
	"maps"
	"slices"
	"time"

	"github.com/iotburn/iotburn/provision/ledger"
)

// StationFigures is one station's part of the line: the Summary sheet's
// per-station table, and `iotburn ledger status`. A board counts for the
// station that claimed it last (the Units sheet's station column); the
// history's figures for the station each event names.
type StationFigures struct {
	Station string
	Units   int                  // boards whose last claim was here
	ByState map[ledger.State]int // of those boards
	Burned  int                  // of those, burned or verified
	// Yield is Burned / Units, as the line's: boards that hold their
	// credential, of all the boards the station saw.
	Yield float64
	// BoardsPerHour is the station's burns on record over its own active
	// time (the line's definition, IdleGap and all); 0 under a minute.
	BoardsPerHour float64
	Active        time.Duration
	Refused       int // boards turned away here before a credential
	Attempts      int // burns begun here
	Failures      int // failures recorded here (a board may fail and then burn)
}

// stationTally adds up StationFigures as the units and events stream by.
type stationTally struct {
	by    map[string]*StationFigures
	burns map[string][]burn
}

func newStationTally() *stationTally {
	return &stationTally{by: map[string]*StationFigures{}, burns: map[string][]burn{}}
}

func (t *stationTally) get(name string) *StationFigures {
	f := t.by[name]
	if f == nil {
		f = &StationFigures{Station: name, ByState: map[ledger.State]int{}}
		t.by[name] = f
	}
	return f
}

func (t *stationTally) unit(u ledger.Unit) {
	f := t.get(u.Station)
	f.Units++
	f.ByState[u.State]++
	if u.State == ledger.Burned || u.State == ledger.Verified {
		f.Burned++
	}
	if !u.BurnedAt.IsZero() {
		t.burns[u.Station] = append(t.burns[u.Station], burn{start: u.BurnedAt.Add(-u.Duration), end: u.BurnedAt})
	}
}

func (t *stationTally) event(e ledger.Event) {
	switch {
	case e.To == ledger.Refused:
		t.get(e.Station).Refused++
	case e.To == ledger.Burning:
		t.get(e.Station).Attempts++
	case e.To == ledger.Failed:
		t.get(e.Station).Failures++
	case e.From == "" && e.UnitID != 0:
		t.get(e.Station).Attempts += e.Attempt // carried over from a v1 ledger
	}
}

// figures are the stations in name order. Events with no station (a
// credential voided with no board, an export by hand) make no row.
func (t *stationTally) figures() []StationFigures {
	var out []StationFigures
	for _, name := range slices.Sorted(maps.Keys(t.by)) {
		if name == "" {
			continue
		}
		f := *t.by[name]
		if f.Units > 0 {
			f.Yield = float64(f.Burned) / float64(f.Units)
		}
		f.Active = activeTime(t.burns[name])
		if f.Active >= time.Minute {
			f.BoardsPerHour = float64(len(t.burns[name])) / f.Active.Hours()
		}
		out = append(out, f)
	}
	return out
}

// Stations works out the per-station figures of the units and history
// matching f, streaming both, without writing a workbook.
func Stations(l *ledger.Ledger, f ledger.Filter) ([]StationFigures, error) {
	t := newStationTally()
	if err := l.EachUnit(f, func(u ledger.Unit) error { t.unit(u); return nil }); err != nil {
		return nil, err
	}
	if err := l.EachEvent(f, func(e ledger.Event) error { t.event(e); return nil }); err != nil {
		return nil, err
	}
	return t.figures(), nil
}
