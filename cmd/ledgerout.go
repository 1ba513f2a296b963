package cmd

import (
	"time"

	"github.com/iotburn/iotburn/registry"
)

// The ledger commands' --json lines (see output.go for the contract). Field
// names are the ones these commands printed before they had types, so
// scripts reading them keep working; each line now says its type, and a
// summary its command.

// ledgerStatusSummary is `ledger status`: the books at a glance.
type ledgerStatusSummary struct {
	Type         string              `json:"type"`
	Command      string              `json:"command"` // "ledger status"
	Ledger       string              `json:"ledger"`
	Engine       string              `json:"engine"`
	Total        int                 `json:"total"`
	Free         int                 `json:"free"`
	ByState      map[string]int      `json:"by_state"`
	Stations     []stationStatus     `json:"stations"`
	Interrupted  []interruptedUnit   `json:"interrupted"`
	OpenRequests []openRequestStatus `json:"open_requests"`
	MovedTo      string              `json:"moved_to,omitempty"`
	MoveFinished *bool               `json:"move_finished,omitempty"`
}

func (ledgerStatusSummary) lineType() string { return typeSummary }

// stationStatus is one station's part of the line and its last session.
type stationStatus struct {
	Station       string    `json:"station"`
	Units         int       `json:"units"`
	Burned        int       `json:"burned"`
	Failed        int       `json:"failed"`
	Yield         float64   `json:"yield"`
	BoardsPerHour float64   `json:"boards_per_hour"`
	Refused       int       `json:"refused"`
	Attempts      int       `json:"attempts"`
	Host          string    `json:"host"`
	PID           int       `json:"pid"`
	Seen          time.Time `json:"seen"`
	Held          int       `json:"held"`
}

// interruptedUnit is a board left burning or reserved, and what to do.
type interruptedUnit struct {
	HWID       string    `json:"hw_id"`
	Platform   string    `json:"platform"`
	Product    string    `json:"product"`
	DeviceName string    `json:"device_name"`
	State      string    `json:"state"`
	Station    string    `json:"station"`
	Port       string    `json:"port"`
	Attempts   int       `json:"attempts"`
	Since      time.Time `json:"since"`
	Next       string    `json:"next"`
}

// openRequestStatus is a create request the platform's answer to is unknown.
type openRequestStatus struct {
	Request  int64     `json:"request"`
	Platform string    `json:"platform"`
	Product  string    `json:"product"`
	Names    int       `json:"names"`
	TaskID   string    `json:"task_id"`
	Since    time.Time `json:"since"`
	Next     string    `json:"next"`
}

// voidSummary is `ledger void`.
type voidSummary struct {
	Type       string `json:"type"`
	Command    string `json:"command"` // "ledger void"
	DeviceName string `json:"device_name"`
	State      string `json:"state"` // "void"
	Deleted    bool   `json:"deleted"`
}

func (voidSummary) lineType() string { return typeSummary }

// releaseSummary is `ledger release`: one board's claim (HWID) or every
// expired one.
type releaseSummary struct {
	Type     string `json:"type"`
	Command  string `json:"command"` // "ledger release"
	HWID     string `json:"hw_id,omitempty"`
	Released int    `json:"released"`
}

func (releaseSummary) lineType() string { return typeSummary }

// moveSummary is `ledger export --to`: the books moved onto a shared ledger.
type moveSummary struct {
	Type        string `json:"type"`
	Command     string `json:"command"` // "ledger export"
	Ledger      string `json:"ledger"`
	To          string `json:"to"`
	Requests    int    `json:"requests"`
	Credentials int    `json:"credentials"`
	Units       int    `json:"units"`
	Events      int    `json:"events"`
	Already     bool   `json:"already"`
}

func (moveSummary) lineType() string { return typeSummary }

// problemEvent is one problem `ledger check` found, with its fix.
type problemEvent struct {
	Type    string `json:"type"`
	Event   string `json:"event"` // "problem"
	Code    string `json:"code"`
	Message string `json:"message"`
	Fix     string `json:"fix"`
}

func (problemEvent) lineType() string { return typeEvent }

// checkSummary is `ledger check`'s verdict.
type checkSummary struct {
	Type          string `json:"type"`
	Command       string `json:"command"` // "ledger check"
	Ledger        string `json:"ledger"`
	SchemaVersion int    `json:"schema_version"`
	Problems      int    `json:"problems"`
	OK            bool   `json:"ok"`
}

func (checkSummary) lineType() string { return typeSummary }

// backupSummary is `ledger backup`.
type backupSummary struct {
	Type          string  `json:"type"`
	Command       string  `json:"command"` // "ledger backup"
	Backup        string  `json:"backup"`
	Ledger        string  `json:"ledger"`
	Bytes         int64   `json:"bytes"`
	SchemaVersion int     `json:"schema_version"`
	Credentials   int     `json:"credentials"`
	Units         int     `json:"units"`
	Events        int     `json:"events"`
	Seconds       float64 `json:"seconds"`
}

func (backupSummary) lineType() string { return typeSummary }

// migrateSummary is `ledger migrate`.
type migrateSummary struct {
	Type    string `json:"type"`
	Command string `json:"command"` // "ledger migrate"
	Ledger  string `json:"ledger"`
	From    int    `json:"from"`
	To      int    `json:"to"`
}

func (migrateSummary) lineType() string { return typeSummary }

// credentialEvent is one device of `ledger export --json`. DeviceSecret,
// and a certificate device's DeviceCert and DevicePrivateKey (PEM), are
// there only with --include-secrets: the one place --json carries a secret,
// because the user asked for it. The secret's fingerprint is the device
// secret's, or the private key's for a certificate device; the
// certificate's is its usual SHA-256 (registry.CertFingerprint).
type credentialEvent struct {
	Type             string `json:"type"`
	Event            string `json:"event"` // "credential"
	Platform         string `json:"platform"`
	Product          string `json:"product"`
	DeviceName       string `json:"device_name"`
	Region           string `json:"region,omitempty"`
	Fingerprint      string `json:"secret_fingerprint"`
	CertFingerprint  string `json:"cert_fingerprint,omitempty"`
	DeviceSecret     string `json:"device_secret,omitempty"`
	DeviceCert       string `json:"device_cert,omitempty"`
	DevicePrivateKey string `json:"device_private_key,omitempty"`
}

func (credentialEvent) lineType() string { return typeEvent }

func newCredentialEvent(c registry.Credential, includeSecrets bool) credentialEvent {
	e := credentialEvent{Type: typeEvent, Event: "credential", Platform: c.Platform, Product: c.ProductID, DeviceName: c.DeviceName,
		Region: c.Region, Fingerprint: c.SecretFingerprint(), CertFingerprint: registry.CertFingerprint(c.DeviceCert)}
	if includeSecrets {
		e.DeviceSecret, e.DeviceCert, e.DevicePrivateKey = c.DeviceSecret, c.DeviceCert, c.DevicePrivateKey
	}
	return e
}

// exportSummary ends `ledger export --product P --json`.
type exportSummary struct {
	Type        string `json:"type"`
	Command     string `json:"command"` // "ledger export"
	Platform    string `json:"platform"`
	Product     string `json:"product"`
	Credentials int    `json:"credentials"`
	Secrets     bool   `json:"secrets"` // the lines carry each device secret
}

func (exportSummary) lineType() string { return typeSummary }
