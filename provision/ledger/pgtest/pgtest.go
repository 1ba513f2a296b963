// Package pgtest starts throwaway PostgreSQL servers for tests: initdb
// into a temporary directory, the server listening on a unix socket in that
// directory only (no TCP port to clash with anything), no Docker. As root
// (PostgreSQL refuses to run as root) the server runs as the postgres user
// the Debian package makes, or as nobody.
//
// The binaries are found in $IOTBURN_PG_BIN, then where pg_config says,
// then /usr/lib/postgresql/*/bin (Debian's: `apt-get install -y
// postgresql`), then on PATH. Where there are none, or the server does not
// start, the tests that need it skip saying why, unless
// IOTBURN_PG_REQUIRED is set (CI), where they fail.
//
// One server serves a test binary (Shared), a fresh database each test
// (NewDB). A server started here stops when the test process ends, however
// it ends: its postmaster gets SIGQUIT from the kernel when the thread that
// started it dies (PR_SET_PDEATHSIG).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvBin names the directory of initdb and postgres; EnvRequired makes a
// server that cannot start a test failure instead of a skip.
const (
	EnvBin      = "IOTBURN_PG_BIN"
	EnvRequired = "IOTBURN_PG_REQUIRED"
)

// User is the superuser of a test cluster (trust authentication on its
// socket: only this machine's users can reach it, and the directory is
// 0700).
const User = "iotburn"

// ErrNotInstalled is no PostgreSQL binaries found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed")

// Options shape a server.
type Options struct {
	// Durable keeps fsync and synchronous commits on, as a factory's server
	// has them (benchmarks). Tests do without: they kill clients, never the
	// machine, and a committed transaction survives a server stop either way.
	Durable bool
}

// Server is one throwaway cluster.
type Server struct {
	Dir  string // the cluster: data/, the socket, log
	bin  string
	cred *syscall.Credential // nil when not root
	opts Options

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start makes a cluster in a new temporary directory and starts its server.
func Start(opts Options) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	cleanStale()
	dir, err := os.MkdirTemp("", fmt.Sprintf("iotburn-pgtest-%d-", os.Getpid()))
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, bin: bin, cred: cred, opts: opts}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", User, "--auth=trust",
		"-E", "UTF8", "--no-locale", "--no-sync")
	initdb.Dir = dir
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, tail(string(out)))
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

// Start starts the server of a stopped cluster (Stop) and waits until it
// takes connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: server already running")
	}
	args := []string{"-D", filepath.Join(s.Dir, "data"), "-k", s.Dir, "-c", "listen_addresses=",
		"-c", "unix_socket_permissions=0777", "-c", "max_connections=200", "-c", "log_min_messages=warning"}
	if !s.opts.Durable {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if s.cred != nil {
		logf.Chown(int(s.cred.Uid), int(s.cred.Gid))
	}
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	// SIGQUIT is PostgreSQL's immediate shutdown; the kernel sends it when
	// the thread that started the server dies, i.e. with this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// Never unlocked: Pdeathsig belongs to this thread, which must live
		// as long as the server does.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(exited)
			return
		}
		started <- nil
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	if err := <-started; err != nil {
		logf.Close()
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("pgtest: postgres exited at start: %s", s.logTail())
		default:
		}
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			return nil
		}
		if ctx.Err() != nil {
			s.stopLocked(syscall.SIGQUIT)
			return fmt.Errorf("pgtest: postgres did not take connections within a minute: %v: %s", err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server (a fast shutdown: clients are disconnected, what
// was committed stays); Start starts it again on the same data.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(syscall.SIGINT)
}

// Kill stops the server the hard way (an immediate shutdown, as in a crash:
// the next Start recovers from the WAL).
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked(syscall.SIGQUIT)
}

func (s *Server) stopLocked(sig syscall.Signal) error {
	if s.cmd == nil {
		return nil
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Close stops the server and removes the cluster.
func (s *Server) Close() error {
	s.Kill()
	return os.RemoveAll(s.Dir)
}

// URL is the address of database db on this server, for ledger.Open.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@/%s?host=%s&sslmode=disable", User, db, s.Dir)
}

// CreateDB makes an empty database.
func (s *Server) CreateDB(name string) error {
	return s.admin(`CREATE DATABASE ` + pgx.Identifier{name}.Sanitize() + ` TEMPLATE template0`)
}

// DropDB removes a database, disconnecting whoever is still on it.
func (s *Server) DropDB(name string) error {
	return s.admin(`DROP DATABASE IF EXISTS ` + pgx.Identifier{name}.Sanitize() + ` WITH (FORCE)`)
}

func (s *Server) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
	return tail(string(b))
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	dbSeq      atomic.Int64
)

// Shared is the test binary's server, started on first use; a test that
// cannot have one skips (fails under IOTBURN_PG_REQUIRED) saying why.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Start(Options{}) })
	if sharedErr != nil {
		Unavailable(tb, sharedErr)
	}
	return shared
}

// Unavailable skips tb (fails it under IOTBURN_PG_REQUIRED) for want of a
// PostgreSQL server.
func Unavailable(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv(EnvRequired) != "" {
		tb.Fatalf("PostgreSQL is required here (%s is set) and cannot be started: %v", EnvRequired, err)
	}
	tb.Skipf("PostgreSQL tests skipped: %v (install it: apt-get install -y postgresql; or set %s)", err, EnvBin)
}

// StopShared removes the shared server, if one was started (TestMain,
// after m.Run).
func StopShared() {
	if shared != nil {
		shared.Close()
	}
}

// NewDB makes a fresh database on the shared server for tb, dropped when
// tb ends, and returns its URL.
func NewDB(tb testing.TB) string {
	tb.Helper()
	s := Shared(tb)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := s.CreateDB(name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() { s.DropDB(name) })
	return s.URL(name)
}

// binDir finds the directory of initdb and postgres.
func binDir() (string, error) {
	has := func(d string) bool {
		_, err1 := os.Stat(filepath.Join(d, "initdb"))
		_, err2 := os.Stat(filepath.Join(d, "postgres"))
		return err1 == nil && err2 == nil
	}
	if d := os.Getenv(EnvBin); d != "" {
		if has(d) {
			return d, nil
		}
		return "", fmt.Errorf("%s=%s has no initdb and postgres", EnvBin, d)
	}
	if pc, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pc, "--bindir").Output(); err == nil && has(strings.TrimSpace(string(out))) {
			return strings.TrimSpace(string(out)), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); has(d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no initdb and postgres in $%s, pg_config --bindir, /usr/lib/postgresql/*/bin or PATH", ErrNotInstalled, EnvBin)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// runAs is who the server runs as: this process's user, or, as root,
// postgres (or nobody).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
		}
	}
	return nil, errors.New("running as root and there is no postgres or nobody user to run PostgreSQL as")
}

// cleanStale removes the clusters of test processes that are gone (their
// servers went with them).
func cleanStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "iotburn-pgtest-*-*"))
	for _, d := range dirs {
		parts := strings.Split(filepath.Base(d), "-")
		if len(parts) < 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[2])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
