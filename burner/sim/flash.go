package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// boardFile is DIR/board-NN.json: a board's identity and its flash. It holds
// device secrets, so it is written 0600, and atomically, because a board that
// answered OK to a write must still hold it after a crash (like real flash).
type boardFile struct {
	Version int    `json:"version"`
	Index   int    `json:"index"`
	Kind    string `json:"kind"`
	MAC     string `json:"mac"`
	IMEI    string `json:"imei"`
	// One section per firmware that stores something.
	Tencent tencentFlash `json:"tencent"`
	Aliyun  aliyunFlash  `json:"aliyun,omitzero"` // omitted until written: older files stay as they were
}

const fileVersion = 1

// Flash is what a board has stored, as a test or the demo wants to see it.
// DeviceSecret is the real secret: never log it.
type Flash struct {
	TLSMode      int
	ProductID    string
	DeviceName   string
	DeviceSecret string
	Region       string
	// ProductSecret is set by AT+TCPRDINFOSET or AT+IDMAU's fourth field
	// (dynamic registration).
	ProductSecret string
	// ClientID and DeviceToken are what an Aliyun board obtained by
	// registration-free registration (AT+IDMREG=1). DeviceToken is a secret.
	ClientID, DeviceToken string
	// CertName, Cert and Key are a Tencent cellular module's certificate
	// device (TLS mode 2): the certificate's file name and the contents of
	// the certificate and of its key (a secret: never log it).
	CertName, Cert, Key string
}

func boardFileName(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("board-%02d.json", i))
}

func linkName(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("ttySIM%02d", i))
}

func readBoardFile(path string) (boardFile, error) {
	var bf boardFile
	b, err := os.ReadFile(path)
	if err != nil {
		return bf, err
	}
	if err := json.Unmarshal(b, &bf); err != nil {
		return bf, fmt.Errorf("%s is damaged: %w (move it away to start that board afresh)", path, err)
	}
	if bf.Version != fileVersion {
		return bf, fmt.Errorf("%s: version %d, this simulator reads %d", path, bf.Version, fileVersion)
	}
	return bf, nil
}

// writeBoardFile replaces path atomically (replaceFile).
func writeBoardFile(path string, bf boardFile) error {
	b, err := json.MarshalIndent(bf, "", "  ")
	if err != nil {
		return err
	}
	return replaceFile(path, func(w io.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

// replaceFile writes path whole or not at all, mode 0600 (boards hold
// secrets): a temp file beside it, filled by write, then renamed over path,
// so a reader (or the next start after the simulator was killed) sees the
// old flash or the new, never half of it. There is no fsync: what the
// simulator models is a board's own flash, which a host crash does not
// touch; the page cache keeps a written file through the death of any
// process, and an fsync per write would make 16 independent boards queue
// on one disk, a cost no real line has (bench's 16-port line lost ~2×
// of its 14× to it).
func replaceFile(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	err = tmp.Chmod(0o600)
	if err == nil {
		err = write(tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

var boardFileRE = regexp.MustCompile(`^board-(\d+)\.json$`)

// storedIndexes lists the board numbers that have a file in dir, ascending.
func storedIndexes(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var idx []int
	for _, e := range ents {
		if m := boardFileRE.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			idx = append(idx, n)
		}
	}
	sort.Ints(idx)
	return idx, nil
}

// LoadFlash reads every board's flash from dir without running anything (the
// demo uses it to cross-check what the line burned). Keys are the boards' port
// paths, DIR/ttySIM00, …, as the line and the ledger name them.
func LoadFlash(dir string) (map[string]Flash, error) {
	idx, err := storedIndexes(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Flash, len(idx))
	for _, i := range idx {
		bf, err := readBoardFile(boardFileName(dir, i))
		if err != nil {
			return nil, err
		}
		out[linkName(dir, i)] = bf.flash()
	}
	return out, nil
}

// flash merges the firmware sections into the kind-neutral view.
func (bf boardFile) flash() Flash {
	if bf.Aliyun != (aliyunFlash{}) {
		return bf.Aliyun.flash()
	}
	return bf.Tencent.flash()
}
