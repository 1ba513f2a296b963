package burner

import "go.bug.st/serial"

// BaudSetter is implemented by ports whose line speed can change while open.
// It is optional so that Port stays small and test doubles need not care: a
// driver that wants to change speed (the ESP ROM's CHANGE_BAUDRATE) checks for
// it before asking the board to switch, so board and host never disagree.
type BaudSetter interface {
	SetBaud(baud int) error
}

// SetBaud switches an open port to baud, 8N1, leaving DTR/RTS alone
// (InitialStatusBits is nil, as in Open: a pty has no modem lines). On a pty
// it sets the slave's termios speed, which is all a simulated board can see.
func (p *serialPort) SetBaud(baud int) error {
	return p.Port.SetMode(&serial.Mode{
		BaudRate: baud,
		DataBits: 8,
		Parity:   serial.NoParity,
		StopBits: serial.OneStopBit,
	})
}

// ModemLines is implemented by ports that can drive DTR and RTS (the
// auto-reset circuit of ESP boards). On a pty, or an adapter without the
// lines, the calls fail with ENOTTY; callers treat that as "no auto-reset".
type ModemLines interface {
	SetDTR(dtr bool) error
	SetRTS(rts bool) error
}
