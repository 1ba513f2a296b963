// Package burner opens the serial ports boards sit on and finds them: by USB
// VID/PID through go.bug.st/serial's enumerator, or by path and glob for boards
// the enumerator cannot see (simulated boards are ptys, which never show up
// there). Protocol drivers live in sub-packages (burner/at); the device
// simulator behind `iotburn sim device` is burner/sim.
package burner
