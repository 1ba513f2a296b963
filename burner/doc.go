// Package burner opens the serial ports boards sit on and finds them: by USB
// VID/PID/serial through go.bug.st/serial's enumerator (each named by its hub
// position where udev gives one), or by path and glob for boards the
// enumerator cannot see (simulated boards are ptys, which never show up
// there). A port is exclusive: TIOCEXCL and an flock, since root passes
// TIOCEXCL. The protocols live in sub-packages: burner/at (AT-command
// modules), burner/esprom (the ESP ROM bootloader and flasher stub),
// burner/flashmap (ESP32 flash maps); the device simulator behind `iotburn
// sim device` is burner/sim.
package burner
