package cmd

import (
	"errors"
	"time"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
)

// The --json contract (README "Machine-readable output"): every line is one
// JSON object with a "type", one of
//
//	event     something that happened or was found: a board's outcome, a
//	          device created, a file written, a port, a listed device
//	progress  bytes of a write in flight
//	warning   the run goes on, but someone should know ("code", "message")
//	summary   the totals of a command, last ("command" says which)
//	error     the command failed ("code", "message"); the exit code says so too
//
// Durations are in seconds. Human text goes to stderr, never stdout. Secrets
// appear only as fingerprints. jsonLine is implemented only by the types
// below, so nothing else can be printed as --json.
type jsonLine interface{ lineType() string }

const (
	typeEvent    = "event"
	typeProgress = "progress"
	typeWarning  = "warning"
	typeSummary  = "summary"
	typeError    = "error"
)

// Error codes: stable names for the kinds of failure, in error lines and on
// failed board events (the exit code's kind, or finer where a board's
// failure has a cause of its own).
const (
	codeUsage          = "usage"
	codeLedger         = "ledger"
	codeAuth           = "auth"
	codeUnreachable    = "platform_unreachable"
	codeNoPorts        = "no_ports"
	codePortBusy       = "port_busy"
	codeNoCredentials  = "no_credentials"
	codeBoardFailed    = "board_failed"
	codeInterrupted    = "interrupted"
	codeFailed         = "failed"
	codeLowCredentials = "low_credentials"
)

// errorCode is the stable code of an error: the exit code's kind, with
// port_busy and no_credentials told apart for a board's failure.
func errorCode(err error) string {
	switch {
	case errors.Is(err, burner.ErrBusy):
		return codePortBusy
	case errors.Is(err, ledger.ErrNoCredentials):
		return codeNoCredentials
	}
	switch exitCode(err) {
	case exitUsage:
		return codeUsage
	case exitLedger:
		return codeLedger
	case exitPlatformAuth:
		return codeAuth
	case exitPlatformUnreachable:
		return codeUnreachable
	case exitNoPorts:
		return codeNoPorts
	case exitNoCredentials:
		return codeNoCredentials
	case exitBoardsFailed:
		return codeBoardFailed
	case exitInterrupted:
		return codeInterrupted
	}
	return codeFailed
}

// errorLine is a command's failure.
type errorLine struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (errorLine) lineType() string { return typeError }

func newErrorLine(err error) errorLine {
	return errorLine{Type: typeError, Code: errorCode(err), Message: err.Error()}
}

// warningLine is something to know that does not stop the run.
type warningLine struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Free    *int   `json:"free,omitempty"` // low_credentials: how many are left
}

func (warningLine) lineType() string { return typeWarning }

// boardEvent is one board's outcome on the line, in verify, or on its way
// (batch prints the outcomes: burned, skipped, verified, failed).
type boardEvent struct {
	Type        string    `json:"type"`
	Event       string    `json:"event"` // the stage: burned, skipped, verified, failed, …
	Time        time.Time `json:"time"`
	Station     string    `json:"station,omitempty"`
	Port        string    `json:"port"`
	HWID        string    `json:"hw_id,omitempty"`
	Platform    string    `json:"platform,omitempty"`
	Product     string    `json:"product,omitempty"`
	DeviceName  string    `json:"device_name,omitempty"`
	Fingerprint string    `json:"secret_fingerprint,omitempty"`
	Attempt     int       `json:"attempt,omitempty"`
	Seconds     float64   `json:"seconds,omitempty"`
	Code        string    `json:"code,omitempty"` // failed: the kind of failure
	Error       string    `json:"error,omitempty"`
	MQTT        string    `json:"mqtt,omitempty"`
	SubDevices  int       `json:"sub_devices,omitempty"` // a gateway's, brought in and in the platform's topology (verify --gateway)
}

func (boardEvent) lineType() string { return typeEvent }

func newBoardEvent(e provision.Event) boardEvent {
	b := boardEvent{Type: typeEvent, Event: string(e.Stage), Time: e.Time, Station: e.Station, Port: e.Port, HWID: e.HWID,
		Platform: e.Platform, Product: e.Product, DeviceName: e.DeviceName, Fingerprint: e.Fingerprint,
		Attempt: e.Attempt, Seconds: e.Duration.Seconds(), Error: e.Err, MQTT: e.MQTT, SubDevices: e.SubDevices}
	if e.Stage == provision.StageNotChecked {
		b.Code = codeUnreachable
		if e.Cause != nil && errorCode(e.Cause) != codeFailed {
			b.Code = errorCode(e.Cause)
		}
	}
	if e.Stage == provision.StageFailed {
		b.Code = codeBoardFailed
		if e.Cause != nil {
			if c := errorCode(e.Cause); c != codeFailed {
				b.Code = c
			}
		}
	}
	return b
}

// progressLine is a write in flight on one port.
type progressLine struct {
	Type       string    `json:"type"`
	Time       time.Time `json:"time"`
	Port       string    `json:"port"`
	HWID       string    `json:"hw_id,omitempty"`
	DeviceName string    `json:"device_name,omitempty"`
	BytesDone  int64     `json:"bytes_done"`
	BytesTotal int64     `json:"bytes_total"`
}

func (progressLine) lineType() string { return typeProgress }

// lineSummary is the totals of batch, burn and verify.
type lineSummary struct {
	Type          string         `json:"type"`
	Command       string         `json:"command"`
	Burned        int            `json:"burned"`
	Skipped       int            `json:"skipped"`
	Verified      int            `json:"verified"`
	Failed        int            `json:"failed"`
	NotChecked    int            `json:"not_checked"`
	PerPort       map[string]int `json:"per_port"`
	FailedPerPort map[string]int `json:"failed_per_port"`
	Seconds       float64        `json:"seconds"`
	Stop          string         `json:"stop,omitempty"`
}

func (lineSummary) lineType() string { return typeSummary }

// portEvent is a serial port seen (ports) or seen to come and go (ports --watch).
type portEvent struct {
	Type         string `json:"type"`
	Event        string `json:"event"` // present, added, removed
	Name         string `json:"name"`
	ByPath       string `json:"by_path,omitempty"` // the USB position's stable name
	USB          bool   `json:"usb"`
	VID          string `json:"vid,omitempty"`
	PID          string `json:"pid,omitempty"`
	SerialNumber string `json:"serial_number,omitempty"`
	Product      string `json:"product,omitempty"`
}

func (portEvent) lineType() string { return typeEvent }

// deviceEvent is one device of the platform's list (devices).
type deviceEvent struct {
	Type       string `json:"type"`
	Event      string `json:"event"` // "device"
	DeviceName string `json:"device_name"`
	Enabled    bool   `json:"enabled"`
	Online     bool   `json:"online"`
	CreatedAt  string `json:"created_at,omitempty"`
	// SubDevices: a gateway's, "Product/DeviceName" (devices --sub-devices).
	SubDevices []string `json:"sub_devices,omitempty"`
}

func (deviceEvent) lineType() string { return typeEvent }

// simBoardEvent is a simulated board plugged in (sim device).
type simBoardEvent struct {
	Type  string `json:"type"`
	Event string `json:"event"` // "board"
	Port  string `json:"port"`
	Kind  string `json:"kind"`
	MAC   string `json:"mac"`
	IMEI  string `json:"imei"`
}

func (simBoardEvent) lineType() string { return typeEvent }

// demoSummary is what the demo made and where it left it.
type demoSummary struct {
	Type     string  `json:"type"`
	Command  string  `json:"command"` // "demo"
	Dir      string  `json:"dir"`
	Ledger   string  `json:"ledger"`
	Audit    string  `json:"audit"`
	Boards   string  `json:"boards"`
	Burned   int     `json:"burned"`
	Skipped  int     `json:"skipped"`
	Verified int     `json:"verified"`
	Seconds  float64 `json:"seconds"`
}

func (demoSummary) lineType() string { return typeSummary }

// auditSummary is the record written.
type auditSummary struct {
	Type          string         `json:"type"`
	Command       string         `json:"command"` // "audit"
	File          string         `json:"file"`
	Units         int            `json:"units"`
	Yield         float64        `json:"yield"`
	BoardsPerHour float64        `json:"boards_per_hour"`
	ActiveSeconds float64        `json:"active_seconds"`
	ByState       map[string]int `json:"by_state"`
	PerPort       map[string]int `json:"per_port"`
}

func (auditSummary) lineType() string { return typeSummary }

// figureEvent is one measurement of bench, beside its reference.
type figureEvent struct {
	Type      string `json:"type"`
	Event     string `json:"event"` // "figure"
	Name      string `json:"name"`
	Value     string `json:"value"`
	Reference string `json:"reference"`
	Target    string `json:"target,omitempty"`
	Met       *bool  `json:"met,omitempty"`
}

func (figureEvent) lineType() string { return typeEvent }

// fileEvent is a file written (image, audit, export).
type fileEvent struct {
	Type        string `json:"type"`
	Event       string `json:"event"` // "file"
	File        string `json:"file"`
	Bytes       int    `json:"bytes,omitempty"`
	DeviceName  string `json:"device_name,omitempty"`
	Product     string `json:"product,omitempty"`
	Fingerprint string `json:"secret_fingerprint,omitempty"`
}

func (fileEvent) lineType() string { return typeEvent }

// fileEvent's image fields: which board a bound credential's file is for,
// and whether writing it recorded the credential as exported.
type imageEvent struct {
	Type        string `json:"type"`
	Event       string `json:"event"` // "file"
	File        string `json:"file"`
	DeviceName  string `json:"device_name"`
	Fingerprint string `json:"secret_fingerprint"`
	StateBefore string `json:"state_before"`
	Exported    bool   `json:"exported"`
	HWID        string `json:"hw_id,omitempty"`
}

func (imageEvent) lineType() string { return typeEvent }

// nameEvent is one name of a names file, in create --dry-run.
type nameEvent struct {
	Type       string `json:"type"`
	Event      string `json:"event"` // "name"
	DeviceName string `json:"device_name"`
	Line       int    `json:"line"`
	Action     string `json:"action"` // create or skip
}

func (nameEvent) lineType() string { return typeEvent }

// namesSource is what create read from a names file.
type namesSource struct {
	File       string `json:"file"`
	Kind       string `json:"kind"`
	Column     int    `json:"column"`
	ColumnName string `json:"column_name"`
	HeaderLine int    `json:"header_line"`
	Columns    int    `json:"columns"`
	Sheet      string `json:"sheet,omitempty"`
	Encoding   string `json:"encoding,omitempty"`
	Separator  string `json:"separator,omitempty"`
}

// createSummary is what create did (or, dry, would do).
type createSummary struct {
	Type      string `json:"type"`
	Command   string `json:"command"` // "create"
	DryRun    bool   `json:"dry_run"`
	Platform  string `json:"platform"`
	Product   string `json:"product"`
	Requested int    `json:"requested"`
	Skipped   int    `json:"skipped"`
	Healed    int    `json:"healed"`
	Created   int    `json:"created"`
	// WouldCreate is what a dry run would create (Skipped: already in
	// the ledger).
	WouldCreate int         `json:"would_create,omitempty"`
	Failed      []string    `json:"failed"` // names the platform refused; [] when none
	Calls       int         `json:"calls"`
	Seconds     float64     `json:"seconds"`
	Names       namesSource `json:"names_source"`
}

func (createSummary) lineType() string { return typeSummary }
