package emulator

// The state on disk is an append-only journal of JSON lines, fsynced before a
// request is answered. Appending one line per batch task keeps 10,000 devices
// fast (about 200 small fsyncs), where rewriting a whole snapshot per request
// would not. On start the journal is replayed, then rewritten as a snapshot
// (temp file, fsync, rename, fsync of the directory) so it stays small.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const journalName = "state.jsonl"

// record is one journal line. Vendor picks the state it belongs to; Op and Data
// are that vendor's own.
type record struct {
	Vendor string          `json:"v"`
	Op     string          `json:"op"`
	Data   json.RawMessage `json:"d"`
}

type journal struct {
	dir string
	f   *os.File
}

// openJournal creates dir (0700) if needed and replays its journal through
// apply. A last line without its newline was never acknowledged (the process
// died mid-write) and is dropped; a corrupt line anywhere else stops the load,
// because skipping it could silently lose a device secret.
func openJournal(dir string, apply func(record) error) (*journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// MkdirAll leaves an existing directory's mode alone; it holds secrets.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, journalName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		data = data[:i+1] // torn tail
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 64<<20)
	for line := 1; sc.Scan(); line++ {
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("%s line %d is corrupt: %w", path, line, err)
		}
		if err := apply(rec); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return &journal{dir: dir}, nil
}

// compact replaces the journal with recs, atomically, and opens it for appending.
func (j *journal) compact(recs []record) error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	path := filepath.Join(j.dir, journalName)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, rec := range recs {
		b, err := json.Marshal(rec)
		if err != nil {
			f.Close()
			return err
		}
		w.Write(b)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := syncDir(j.dir); err != nil {
		return err
	}
	j.f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	return err
}

// append writes recs as one write and fsyncs.
func (j *journal) append(recs []record) error {
	if j.f == nil {
		return errors.New("state journal is closed")
	}
	var buf bytes.Buffer
	for _, rec := range recs {
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	st, err := j.f.Stat()
	if err != nil {
		return err
	}
	if _, err := j.f.Write(buf.Bytes()); err != nil {
		// Cut a partial line off, or every later line would follow garbage.
		j.f.Truncate(st.Size())
		return err
	}
	return j.f.Sync()
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
