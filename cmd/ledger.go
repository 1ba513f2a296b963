package cmd

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/audit"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

func newLedgerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ledger",
		Short: "Look into the books: devices, secrets and boards",
	}
	c.AddCommand(newLedgerStatusCmd(g), newLedgerVoidCmd(g), newLedgerReleaseCmd(g), newLedgerExportCmd(g),
		newLedgerCheckCmd(g), newLedgerBackupCmd(g), newLedgerMigrateCmd(g))
	return c
}

func newLedgerStatusCmd(g *globals) *cobra.Command {
	var pf platformFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "Count credentials and boards by state, and say what an interrupted run left",
		Long: `status counts the product's credentials by state (free, exported, and the boards' states), shows
each station's part of the line (its boards, how many burned and failed, yield, boards per hour,
boards refused, and when its session last renewed itself), then names what an interrupted run
left behind, with what the next run will do with each:
  boards left burning (a run killed, or stopped by a second Ctrl-C, mid-write) or reserved
  (claimed, nothing written yet): plugged in again, each gets the same credential back and is
  burned again; never a new one. A board that is gone for good: void (burning) or release
  (reserved) its credential, as each line says.
  create requests left open (create killed mid-call): the next create for that product asks the
  platform what became of them before creating anything.
On a line running now, boards in flight show as burning too. A claim nothing was written for has
a lease: unless its board is claimed again first, its credential goes back to the pool when the
lease runs out (any station running does that; ` + "`iotburn ledger release --expired`" + ` by hand).`,
		Example: `  iotburn ledger status
  iotburn ledger status --product ABCDEFGHIJ --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			platform := ""
			if cmd.Flags().Changed("platform") || pf.product != "" {
				platform = pf.platform
			}
			st, err := readLedgerStatus(l, platform, pf.product)
			if err != nil {
				return err
			}
			if g.json {
				return g.emit(st.summary())
			}
			st.print(g.out)
			return nil
		},
	}
	pf.register(c, false)
	return c
}

// ledgerStatus is what `ledger status` reports, read once; printed as text
// or as one --json summary.
type ledgerStatus struct {
	path, engine string
	counts       ledger.Counts
	left         []ledger.Interrupted
	open         []ledger.Request
	per          []audit.StationFigures
	seen         map[string]ledger.Station
	movedTo      string
	moved        bool
}

func readLedgerStatus(l *ledger.Ledger, platform, product string) (ledgerStatus, error) {
	counts, err := l.Counts(platform, product)
	if err != nil {
		return ledgerStatus{}, err
	}
	left, err := l.Interrupted(platform, product)
	if err != nil {
		return ledgerStatus{}, err
	}
	open, err := l.OpenRequests(platform, product)
	if err != nil {
		return ledgerStatus{}, err
	}
	per, err := audit.Stations(l, ledger.Filter{Platform: platform, Product: product})
	if err != nil {
		return ledgerStatus{}, err
	}
	sessions, err := l.Stations()
	if err != nil {
		return ledgerStatus{}, err
	}
	seen := map[string]ledger.Station{}
	for _, s := range sessions {
		seen[s.Name] = s
	}
	movedTo, moved, err := l.MovedTo()
	if err != nil {
		return ledgerStatus{}, err
	}
	return ledgerStatus{path: l.Path(), engine: l.Engine(), counts: counts, left: left, open: open, per: per, seen: seen,
		movedTo: movedTo, moved: moved}, nil
}

// summary is the status as the --json contract's summary line.
func (st ledgerStatus) summary() ledgerStatusSummary {
	byState := map[string]int{}
	for s, n := range st.counts.ByState {
		byState[string(s)] = n
	}
	out := ledgerStatusSummary{Type: typeSummary, Command: "ledger status", Ledger: st.path, Engine: st.engine,
		Total: st.counts.Total, Free: st.counts.Free, ByState: byState,
		Stations: []stationStatus{}, Interrupted: []interruptedUnit{}, OpenRequests: []openRequestStatus{}}
	for _, it := range st.left {
		u := it.Unit
		out.Interrupted = append(out.Interrupted, interruptedUnit{HWID: u.HWID, Platform: u.Cred.Platform, Product: u.Cred.ProductID,
			DeviceName: u.Cred.DeviceName, State: string(u.State), Station: u.Station, Port: u.Port,
			Attempts: u.Attempts, Since: u.UpdatedAt, Next: it.Next})
	}
	for _, r := range st.open {
		out.OpenRequests = append(out.OpenRequests, openRequestStatus{Request: r.ID, Platform: r.Platform, Product: r.Product,
			Names: len(r.Names), TaskID: r.TaskID, Since: r.CreatedAt, Next: openRequestNext(r)})
	}
	for _, f := range st.per {
		s := st.seen[f.Station]
		out.Stations = append(out.Stations, stationStatus{Station: f.Station, Units: f.Units, Burned: f.Burned,
			Failed: f.ByState[ledger.Failed], Yield: f.Yield, BoardsPerHour: f.BoardsPerHour, Refused: f.Refused,
			Attempts: f.Attempts, Host: s.Host, PID: s.PID, Seen: s.Seen, Held: s.Held})
	}
	if st.movedTo != "" {
		moved := st.moved
		out.MovedTo, out.MoveFinished = st.movedTo, &moved
	}
	return out
}

// print writes the status for a person.
func (st ledgerStatus) print(w io.Writer) {
	fmt.Fprintf(w, "ledger %s\n", st.path)
	if st.movedTo != "" {
		if st.moved {
			fmt.Fprintf(w, "  moved to %s: an archive now (it refuses every write); the line runs on that ledger\n", st.movedTo)
		} else {
			fmt.Fprintf(w, "  a move to %s was started and not finished: run `iotburn ledger export --to %s` again\n", st.movedTo, st.movedTo)
		}
	}
	fmt.Fprintf(w, "  %-10s %6d\n", "devices", st.counts.Total)
	fmt.Fprintf(w, "  %-10s %6d  (no board yet)\n", "free", st.counts.Free)
	states := make([]string, 0, len(st.counts.ByState))
	for s := range st.counts.ByState {
		states = append(states, string(s))
	}
	sort.Slice(states, func(i, j int) bool { return stateOrder(states[i]) < stateOrder(states[j]) })
	for _, s := range states {
		note := ""
		if ledger.State(s) == ledger.Exported {
			note = "  (images handed out for flashing elsewhere: never given to a board here)"
		}
		fmt.Fprintf(w, "  %-10s %6d%s\n", s, st.counts.ByState[ledger.State(s)], note)
	}
	if len(st.per) > 0 {
		fmt.Fprintf(w, "\n%d station(s):\n  %-16s %6s %7s %7s %7s %9s %8s  %s\n", len(st.per),
			"station", "boards", "burned", "failed", "yield", "boards/h", "refused", "last seen")
		for _, f := range st.per {
			rate := "-"
			if f.BoardsPerHour > 0 {
				rate = fmt.Sprintf("%.1f", f.BoardsPerHour)
			}
			last := "-"
			if s, ok := st.seen[f.Station]; ok {
				last = fmt.Sprintf("%s (pid %d on %s", s.Seen.Local().Format("2006-01-02 15:04:05"), s.PID, s.Host)
				if s.Held > 0 {
					last += fmt.Sprintf("; %d claim(s) held, leased until %s", s.Held, s.Leased.Local().Format("15:04:05"))
				}
				last += ")"
			}
			fmt.Fprintf(w, "  %-16s %6d %7d %7d %6.1f%% %9s %8d  %s\n", f.Station, f.Units, f.Burned,
				f.ByState[ledger.Failed], 100*f.Yield, rate, f.Refused, last)
		}
	}
	if len(st.left) > 0 {
		fmt.Fprintf(w, "\n%d board(s) left half-done by an interrupted run (or in flight on a line running now):\n", len(st.left))
		for _, it := range st.left {
			u := it.Unit
			where := u.Port
			if u.Station != "" {
				where = u.Station + " " + u.Port
			}
			fmt.Fprintf(w, "  %s  %s  device %s  on %s since %s, %d attempt(s)\n    next: %s\n",
				u.HWID, u.State, u.Cred.DeviceName, where, u.UpdatedAt.Local().Format("2006-01-02 15:04:05"), u.Attempts, it.Next)
		}
	}
	if len(st.open) > 0 {
		fmt.Fprintf(w, "\n%d create request(s) left open by an interrupted create:\n", len(st.open))
		for _, r := range st.open {
			fmt.Fprintf(w, "  request %d  %s/%s  %d names  since %s\n    next: %s\n",
				r.ID, r.Platform, r.Product, len(r.Names), r.CreatedAt.Local().Format("2006-01-02 15:04:05"), openRequestNext(r))
		}
	}
}

func stateOrder(s string) int {
	for i, v := range ledger.States {
		if string(v) == s {
			return i
		}
	}
	return 100
}

func newLedgerVoidCmd(g *globals) *cobra.Command {
	var (
		pf             platformFlags
		device, reason string
		deleteOnCloud  bool
	)
	c := &cobra.Command{
		Use:   "void --product P --device NAME --reason TEXT",
		Short: "Scrap a credential: it is never handed to another board",
		Long: `void marks a device's credential as scrapped (a dead board, a lost unit): the ledger never
hands it to another board, and the board it was on (if any) is refused by the line.
With --delete the device is also deleted on the platform (keys from the environment).`,
		Example: `  iotburn ledger void --product ABCDEFGHIJ --device dev0042 --reason "board burnt out"
  iotburn ledger void --product ABCDEFGHIJ --device dev0042 --reason "lost" --delete`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Void(pf.platform, pf.product, device, reason); err != nil {
				return err
			}
			if deleteOnCloud {
				platform, err := pf.client()
				if err != nil {
					return fmt.Errorf("voided in the ledger, but: %w", err)
				}
				if err := platform.DeleteDevice(cmd.Context(), pf.product, device); err != nil {
					return fmt.Errorf("voided in the ledger, but not deleted on the platform: %w", err)
				}
			}
			if g.json {
				return g.emit(voidSummary{Type: typeSummary, Command: "ledger void", DeviceName: device, State: string(ledger.Void), Deleted: deleteOnCloud})
			}
			fmt.Fprintf(g.out, "%s is void", device)
			if deleteOnCloud {
				fmt.Fprint(g.out, " and deleted on the platform")
			}
			fmt.Fprintln(g.out)
			return nil
		},
	}
	pf.register(c, true)
	c.Flags().StringVar(&device, "device", "", "the device to void (required)")
	c.Flags().StringVar(&reason, "reason", "", "why (required; it goes into the audit)")
	c.Flags().BoolVar(&deleteOnCloud, "delete", false, "also delete the device on the platform")
	_ = c.MarkFlagRequired("device")
	_ = c.MarkFlagRequired("reason")
	return c
}

func newLedgerReleaseCmd(g *globals) *cobra.Command {
	var (
		hw      string
		expired bool
	)
	c := &cobra.Command{
		Use:   "release --hw HWID | --expired",
		Short: "Give back a credential claimed by a board that never started burning",
		Long: `release frees the credential a board claimed if no burn was ever started on it (for instance
the board was identified, then pulled). A board that may hold its secret cannot be released:
void its credential instead.
--expired gives back every claim whose lease ran out (claimed, nothing written, not claimed again
since: a station that died, or lost its boards); any station running does this by itself.`,
		Example: `  iotburn ledger release --hw 24:0a:c4:12:34:56
  iotburn ledger release --expired`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (hw == "") == !expired {
				return usagef("give --hw HWID or --expired")
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if expired {
				n, err := l.ReleaseExpired()
				if err != nil {
					return err
				}
				if g.json {
					return g.emit(releaseSummary{Type: typeSummary, Command: "ledger release", Released: n})
				}
				fmt.Fprintf(g.out, "gave back %d expired claim(s)\n", n)
				return nil
			}
			if err := l.Release(hw); err != nil {
				if errors.Is(err, ledger.ErrNotFound) {
					return usagef("no board %s in the ledger %s: give its HWID as `iotburn ledger status` or the audit shows it", hw, ledger.Redact(l.Path()))
				}
				return err
			}
			if g.json {
				return g.emit(releaseSummary{Type: typeSummary, Command: "ledger release", HWID: hw, Released: 1})
			}
			fmt.Fprintf(g.out, "released the credential of board %s\n", hw)
			return nil
		},
	}
	c.Flags().StringVar(&hw, "hw", "", "the board's `HWID`: its MAC or imei:N, as the audit shows it")
	c.Flags().BoolVar(&expired, "expired", false, "give back every claim whose lease ran out")
	return c
}

func newLedgerExportCmd(g *globals) *cobra.Command {
	var (
		pf             platformFlags
		includeSecrets bool
		to             string
	)
	c := &cobra.Command{
		Use:   "export --product P | --to postgres://…",
		Short: "Print the product's devices as CSV (secrets only with --include-secrets), or move the books onto a shared ledger",
		Long: `export --product P prints the product's devices as CSV, secrets only with --include-secrets
(with --json: one "credential" event per device, then a summary).

export --to postgres://… moves this SQLite ledger's books (a single station's batch: every device,
board and event) onto the ledger a line's stations share, in one transaction there, and from
then on this file is an archive: it refuses every write, so that no credential is given out here
and there. It refuses, moving nothing, if ` + "`iotburn ledger check`" + ` finds a problem here, or if the
shared ledger holds any of these devices or boards with other data: it never merges two versions
of one. Run again after it finished, it says so and changes nothing. The shared ledger's tables
are made if its database has none. The URL may come from IOTBURN_LEDGER_TO instead, to keep its
password off the command line.`,
		Example: `  iotburn ledger export --product ABCDEFGHIJ > devices.csv
  iotburn ledger export --product ABCDEFGHIJ --json > devices.jsonl        # one line per device, then a summary
  iotburn ledger export --product ABCDEFGHIJ --include-secrets > backup.csv   # handle with care
  iotburn --ledger line1.db ledger export --to postgres://line@db.factory/iotburn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to == "" {
				to = os.Getenv("IOTBURN_LEDGER_TO")
			}
			if to != "" {
				return moveLedger(cmd, g, to)
			}
			if pf.product == "" {
				return usagef("give --product P (the devices as CSV), or --to postgres://… (move the books onto a shared ledger)")
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if g.json {
				sum := exportSummary{Type: typeSummary, Command: "ledger export", Platform: pf.platform, Product: pf.product, Secrets: includeSecrets}
				err := l.Credentials(pf.platform, pf.product, func(c registry.Credential) error {
					sum.Credentials++
					return g.emit(newCredentialEvent(c, includeSecrets))
				})
				if err != nil {
					return err
				}
				return g.emit(sum)
			}
			w := csv.NewWriter(g.out)
			// A certificate device's secret is its private key: the
			// fingerprint column names it; the certificate and key (PEM,
			// quoted over several lines) come after the secret, with it.
			header := []string{"platform", "product", "device_name", "region", "secret_fingerprint", "cert_fingerprint"}
			if includeSecrets {
				header = append(header, "device_secret", "device_cert", "device_private_key")
			}
			if err := w.Write(header); err != nil {
				return err
			}
			err = l.Credentials(pf.platform, pf.product, func(c registry.Credential) error {
				row := []string{c.Platform, c.ProductID, c.DeviceName, c.Region, c.SecretFingerprint(), registry.CertFingerprint(c.DeviceCert)}
				if includeSecrets {
					row = append(row, c.DeviceSecret, c.DeviceCert, c.DevicePrivateKey)
				}
				return w.Write(row)
			})
			if err != nil {
				return err
			}
			w.Flush()
			return w.Error()
		},
	}
	pf.register(c, false)
	c.Flags().BoolVar(&includeSecrets, "include-secrets", false, "add each device secret, certificate and private key (the output is then as sensitive as the ledger)")
	c.Flags().StringVar(&to, "to", "", "move the books onto the shared ledger at this postgres:// `URL` (or $IOTBURN_LEDGER_TO)")
	return c
}

// moveLedger is `ledger export --to`.
func moveLedger(cmd *cobra.Command, g *globals, to string) error {
	if ledger.IsURL(g.ledger) {
		return usagef("--ledger %s is a shared ledger already: --to moves a SQLite file's books onto one", ledger.Redact(g.ledger))
	}
	if !ledger.IsURL(to) {
		return usagef("--to %q: give the shared ledger's postgres:// URL", to)
	}
	l, err := g.openExistingLedger()
	if err != nil {
		return err
	}
	defer l.Close()
	info, err := l.MoveTo(cmd.Context(), to)
	switch {
	case errors.Is(err, ledger.ErrConflict), errors.Is(err, ledger.ErrProblems), errors.Is(err, ledger.ErrMoved):
		return withKind(errLedger, err)
	case err != nil:
		return err
	}
	if g.json {
		return g.emit(moveSummary{Type: typeSummary, Command: "ledger export", Ledger: l.Path(), To: info.Target,
			Requests: info.Requests, Credentials: info.Credentials, Units: info.Units, Events: info.Events, Already: info.Already})
	}
	if info.Already {
		fmt.Fprintf(g.out, "%s: its books are on %s already, identical: nothing to do\n", l.Path(), info.Target)
		return nil
	}
	fmt.Fprintf(g.out, "moved %s onto %s: %d devices, %d boards, %d events, %d create requests; %s is an archive now (it refuses writes): "+
		"run every station with --ledger %s (or IOTBURN_LEDGER)\n",
		l.Path(), info.Target, info.Credentials, info.Units, info.Events, info.Requests, l.Path(), info.Target)
	return nil
}

// openRequestNext is what the next `create` does with a request a crash left
// open (provision.Create heals every open request of its product first).
func openRequestNext(r ledger.Request) string {
	task := "no task id was recorded: the call may not have reached the platform"
	if r.TaskID != "" {
		task = "task " + r.TaskID
	}
	return fmt.Sprintf("the next `iotburn create --platform %s --product %s --names FILE` (any names file) asks the platform what became of these %d names (%s) and stores their secrets before creating anything; nothing is created twice",
		r.Platform, r.Product, len(r.Names), task)
}

func newLedgerCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check the ledger: the engine's integrity and every invariant of the books",
		Long: `check reads the ledger (it changes nothing, and runs while a batch writes) and tests:
  SQLite's integrity_check and foreign_key_check; on PostgreSQL, rows pointing at nothing and,
  where the amcheck extension is installed, every index of the books;
  every taken credential on exactly one board, no board on a free or exported credential,
  void boards and void credentials agreeing, every board in the state its last event says;
  no create request left open by an interrupted create;
  the schema current, with the triggers that guard the books in place (and enabled).
Each problem is printed with what to do; the exit status is non-zero (3) if there is any.`,
		Example: `  iotburn ledger check
  iotburn --ledger /srv/line1/iotburn.db ledger check --json   # one object a problem, then a summary`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.openReadOnlyLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			problems, err := l.Check(cmd.Context())
			if err != nil {
				return withKind(errLedger, err)
			}
			v, _ := l.SchemaVersion()
			if g.json {
				for _, p := range problems {
					if err := g.emit(problemEvent{Type: typeEvent, Event: "problem", Code: p.Code, Message: p.Message, Fix: p.Fix}); err != nil {
						return err
					}
				}
				if err := g.emit(checkSummary{Type: typeSummary, Command: "ledger check", Ledger: l.Path(), SchemaVersion: v, Problems: len(problems), OK: len(problems) == 0}); err != nil {
					return err
				}
			} else {
				for _, p := range problems {
					fmt.Fprintf(g.out, "PROBLEM %s: %s\n  fix: %s\n", p.Code, p.Message, p.Fix)
				}
				if len(problems) == 0 {
					fmt.Fprintf(g.out, "ledger %s: ok (integrity, invariants, no open requests, schema version %d)\n", l.Path(), v)
				}
			}
			if len(problems) > 0 {
				codes := make([]string, len(problems))
				for i, p := range problems {
					codes[i] = p.Code
				}
				return &exitError{kind: errLedger, err: fmt.Errorf("ledger %s: %d problem(s): %s", l.Path(), len(problems), strings.Join(codes, ", "))}
			}
			return nil
		},
	}
}

func newLedgerBackupCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the ledger, consistently, while the line runs",
		Long: `backup writes a copy of the ledger to FILE with SQLite's VACUUM INTO: the books at one instant,
even while a batch is writing (it does not stop the line). A shared ledger (postgres://…) is
copied the same way into FILE, a SQLite ledger, row for row, in one snapshot; to restore it onto
an empty database: iotburn --ledger FILE ledger export --to postgres://…. FILE is created 0600, since it holds
every secret, and never overwritten: give a new name each time. The copy is read back and
integrity-checked before backup reports success; a failed backup leaves no file.
To restore, stop the line and put the copy in the ledger's place (with --ledger, or by name).`,
		Example: `  iotburn ledger backup /mnt/usb/iotburn-$(date +%Y%m%d-%H%M).db
  iotburn --ledger line1.db ledger backup line1-backup.db --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("backup takes one argument, the file to write, e.g. `iotburn ledger backup iotburn-backup.db`")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := args[0]
			if _, err := os.Lstat(dest); err == nil {
				return usagef("%s already exists: a backup never overwrites a file: give a new name", dest)
			}
			if filepath.Clean(dest) == filepath.Clean(g.ledger) {
				return usagef("%s is the ledger itself: give another file", dest)
			}
			l, err := g.openReadOnlyLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			start := time.Now()
			info, err := l.Backup(cmd.Context(), dest)
			if errors.Is(err, fs.ErrExist) {
				return withKind(errUsage, err)
			}
			if err != nil {
				return withKind(errLedger, err)
			}
			if g.json {
				return g.emit(backupSummary{Type: typeSummary, Command: "ledger backup", Backup: info.Path, Ledger: l.Path(), Bytes: info.Bytes,
					SchemaVersion: info.Version, Credentials: info.Credentials, Units: info.Units, Events: info.Events, Seconds: time.Since(start).Seconds()})
			}
			fmt.Fprintf(g.out, "backed up %s to %s: %d bytes, %d credentials, %d boards, %d events, integrity ok (0600: it holds every secret)\n",
				l.Path(), info.Path, info.Bytes, info.Credentials, info.Units, info.Events)
			return nil
		},
	}
}

func newLedgerMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the ledger's schema up to this iotburn's version (or make it, on PostgreSQL)",
		Long: `migrate upgrades an existing ledger file in place to the schema this iotburn writes, each step in
one transaction (a crash leaves the previous version intact). Any command that writes the ledger
does the same on opening it; migrate does only that, and says what it did. Back up first.
On PostgreSQL (--ledger postgres://…) it also makes the books in a database that has none yet:
the database itself is the factory IT's to create; stations opening it at once make them once.`,
		Example: `  iotburn ledger backup before-upgrade.db && iotburn ledger migrate
  IOTBURN_LEDGER=postgres://line@db.factory/iotburn iotburn ledger migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			from := 0
			ro, err := g.openReadOnlyLedger()
			switch {
			case err == nil:
				from, err = ro.SchemaVersion()
				ro.Close()
				if err != nil {
					return withKind(errLedger, err)
				}
			case ledger.IsURL(g.ledger) && errors.Is(err, ledger.ErrNotFound):
				// An empty database: the books are made below.
			default:
				return err
			}
			l, err := g.openLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			to, err := l.SchemaVersion()
			if err != nil {
				return withKind(errLedger, err)
			}
			if g.json {
				return g.emit(migrateSummary{Type: typeSummary, Command: "ledger migrate", Ledger: l.Path(), From: from, To: to})
			}
			if from == to {
				fmt.Fprintf(g.out, "ledger %s: schema version %d, current: nothing to do\n", l.Path(), to)
			} else {
				fmt.Fprintf(g.out, "ledger %s: schema version %d -> %d\n", l.Path(), from, to)
			}
			return nil
		},
	}
}

// openReadOnlyLedger opens an existing ledger without migrating it or
// writing anything (check, backup).
func (g *globals) openReadOnlyLedger() (*ledger.Ledger, error) {
	if _, err := os.Stat(g.ledger); err != nil && !ledger.IsURL(g.ledger) {
		return nil, withKind(errLedger, fmt.Errorf("no ledger at %s: point --ledger at yours", g.ledger))
	}
	l, err := ledger.OpenReadOnly(g.ledger)
	return l, withKind(errLedger, err)
}
