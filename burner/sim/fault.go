package sim

// Fault is a misbehaviour injected into a board, for tests and the demo.
type Fault int

const (
	FaultNone      Fault = iota
	FaultDrop            // the board stops answering (hung firmware, broken RX wire)
	FaultGarble          // the board answers random bytes (what a wrong baud rate looks like)
	FaultFailWrite       // credential writes answer +TCDEVINFOSET:FAIL,… (flash worn out)
)

func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultDrop:
		return "drop"
	case FaultGarble:
		return "garble"
	case FaultFailWrite:
		return "fail-write"
	}
	return "unknown"
}
