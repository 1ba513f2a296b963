// Package cmd holds iotburn's cobra commands. Each one reads its flags,
// checks every one of them before anything touches a board or the cloud,
// builds the library objects, calls one library function and prints the
// result: on a terminal for people (screen.go), or as the --json contract
// (output.go); exitcode.go maps errors to exit codes in one place.
package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
)

// globals are the flags every command takes.
type globals struct {
	ledger  string
	json    bool
	verbose bool
	out     io.Writer
	errOut  io.Writer
	// mu keeps lines whole: the line's workers print from many goroutines.
	mu sync.Mutex
	// noticeTo, while a screen is up, shows the notices that must stay
	// (stopping after Ctrl-C); nil prints them on errOut.
	noticeTo func(string)
	logFile  string
	logOnce  sync.Once
	log      *slog.Logger
}

// notice shows a line the user must not miss, on the screen if one is up.
func (g *globals) notice(line string) {
	g.mu.Lock()
	to := g.noticeTo
	g.mu.Unlock()
	if to != nil {
		to(line)
		return
	}
	g.printLine(g.errOut, line)
}

// setNotice routes notices to a screen (nil: back to errOut).
func (g *globals) setNotice(to func(string)) {
	g.mu.Lock()
	g.noticeTo = to
	g.mu.Unlock()
}

// Execute runs the root command; it is all main does.
func Execute() {
	g := &globals{out: os.Stdout, errOut: os.Stderr}
	root := newRoot(g)
	ctx, stop := interruptContext(g)
	err := execute(ctx, root, os.Args[1:])
	stop()
	if err != nil {
		if g.json {
			_ = g.emit(newErrorLine(err))
		}
		fmt.Fprintln(g.errOut, "iotburn:", err)
		os.Exit(exitCode(err))
	}
}

// execute runs root on args; an unknown command is a usage error.
func execute(ctx context.Context, root *cobra.Command, args []string) error {
	if _, _, err := root.Find(args); err != nil {
		return withKind(errUsage, err)
	}
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "iotburn",
		Short: "Factory provisioning for IoT boards: create devices, render images, burn and verify them",
		Long: `iotburn gives each board on the line its own cloud identity (Tencent Cloud IoT Hub, Alibaba
Cloud IoT Platform), proves it landed by reading it back, and keeps a ledger and an audit workbook
an auditor can trust. AT-command modules and ESP32 boards; device-level and product-level keys.

Start with the demo: it runs a whole batch on the built-in platform emulator and simulated boards.

` + exitCodesHelp,
		Example: `  iotburn demo
  iotburn create --product ABCDEFGHIJ --names sn.csv
  iotburn batch  --product ABCDEFGHIJ --ports auto
  iotburn verify --product ABCDEFGHIJ --ports auto --cloud --mqtt
  iotburn audit  --out audit.xlsx`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.out)
	root.SetErr(g.errOut)
	pf := root.PersistentFlags()
	ledgerFlag(pf, &g.ledger)
	pf.BoolVar(&g.json, "json", false, "print one JSON object per line (for MES and scripts)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log what happens on the wire: each command to a board and its answer (never secrets)")
	pf.StringVar(&g.logFile, "log", "", "write the log (-v: the wire) to this file instead of stderr (0600)")

	root.AddCommand(
		newDemoCmd(g),
		newSimCmd(g),
		newCreateCmd(g),
		newImageCmd(g),
		newBurnCmd(g),
		newBatchCmd(g),
		newVerifyCmd(g),
		newAuditCmd(g),
		newPortsCmd(g),
		newLedgerCmd(g),
		newDevicesCmd(g),
		newPairCmd(g),
		newBenchCmd(g),
	)
	usageErrors(root)
	return root
}

// logger logs to stderr at debug level with -v, warnings only otherwise.
// With --log FILE the log goes to FILE (created 0600, appended to), stderr
// otherwise. The wire log names commands and sizes, never a secret.
func (g *globals) logger() *slog.Logger {
	g.logOnce.Do(func() {
		level := slog.LevelWarn
		if g.verbose {
			level = slog.LevelDebug
		}
		w := g.errOut
		if g.logFile != "" {
			f, err := os.OpenFile(g.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			if err != nil {
				fmt.Fprintf(g.errOut, "iotburn: --log %s: %v (logging to stderr)\n", g.logFile, err)
			} else {
				w = f // closed by the process's exit
			}
		}
		g.log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	})
	return g.log
}

// wireLog is the logger for what crosses the serial lines: nil without -v,
// so the drivers skip the work.
func (g *globals) wireLog() *slog.Logger {
	if !g.verbose {
		return nil
	}
	return g.logger()
}

// emit writes one line of the --json contract (output.go): one JSON object
// on one line, whole, from any goroutine. It takes only the contract's types.
func (g *globals) emit(v jsonLine) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return json.NewEncoder(g.out).Encode(v)
}

// printLine writes one line to w, whole, from any goroutine.
func (g *globals) printLine(w io.Writer, line string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fmt.Fprintln(w, line)
}

// interruptContext is cancelled by the first Ctrl-C (or SIGTERM); a second
// one exits at once (the ledger is transactional, so that is safe too: a
// board cut short stays "burning" and the next run burns it again with the
// same credential).
func interruptContext(g *globals) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ch
		g.notice("iotburn: stopping: finishing the boards in flight (Ctrl-C again to quit now)")
		cancel()
		<-ch
		g.notice("iotburn: quit: boards cut short are left \"burning\"; the next batch burns each again with its own credential (`iotburn ledger status` lists them)")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// exitError is a failure of a command's own that has its exit code by
// kind (errBoardsFailed): the message is for people, the kind for scripts.
type exitError struct {
	kind error
	err  error
}

func (e *exitError) Error() string        { return e.err.Error() }
func (e *exitError) Unwrap() []error      { return []error{e.err, e.kind} }
func (e *exitError) Is(target error) bool { return target == e.kind }

// version is iotburn's module version as the Go toolchain recorded it
// (v1.2.3 from `go install …@v1.2.3`, the VCS revision in a checkout).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && (v == "" || v == "(devel)") {
			v = s.Value[:12]
		}
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}
