package cmd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every fuzz target of the project (each parser of outside input: names
// files, partition tables, NVS images, SLIP frames, AT answers, the
// emulator's requests) is fuzzed for a few seconds in every test run, so a
// parser change that crashes on odd input is caught by CI, not only by
// someone who remembers `go test -fuzz`. The targets are found in the
// sources, so a new one is included without a list to keep. Their seed
// corpora run as plain tests in their own packages as well.
//
// Each is fuzzed for a count of inputs, not a duration: with -fuzztime as a
// duration the go command fails a target whose worker is mid-input when the
// time runs out ("context deadline exceeded", no input written: golang/go
// issues 51484 and 75804), which a busy machine makes happen (once in ten
// suites under flake-check). A count has no deadline to race; on a loaded
// machine it only takes longer. 1,000 inputs: ~1 s for the fastest target,
// ~18 s for the xlsx reader (2 cores, quiet).
//
// By hand, longer: go test ./burner/flashmap -run '^$' -fuzz '^FuzzReadTableBinary$' -fuzztime 5m
func TestFuzzTargetsBriefly(t *testing.T) {
	if testing.Short() {
		t.Skip("fuzzing")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// The go command that runs this test put itself on PATH for it (go
	// test sets $PATH to lead with its own GOROOT/bin).
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	targets := fuzzTargets(t, root)
	if len(targets) < 10 {
		t.Fatalf("found %d fuzz targets under %s, want the project's (at least 10): is the search broken?", len(targets), root)
	}
	const inputs = "1000x"
	for _, tg := range targets {
		t.Run(tg.pkg+"/"+tg.name, func(t *testing.T) {
			start := time.Now()
			cmd := exec.Command(goBin, "test", "-run", "^$", "-fuzz", "^"+tg.name+"$", "-fuzztime", inputs, "./"+tg.pkg)
			cmd.Dir = root
			// One fuzzing worker: the suite runs beside it on every core.
			cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s in ./%s found a failing input (saved under ./%s/testdata/fuzz/%s): %v\n%s", tg.name, tg.pkg, tg.pkg, tg.name, err, out)
			}
			t.Logf("%s: %.1fs", tg.name, time.Since(start).Seconds())
		})
	}
}

type fuzzTarget struct{ pkg, name string }

var fuzzFunc = regexp.MustCompile(`^func (Fuzz\w+)\(f \*testing\.F\)`)

// fuzzTargets lists the Fuzz functions in the module's test files.
func fuzzTargets(t *testing.T, root string) []fuzzTarget {
	t.Helper()
	var found []fuzzTarget
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := fuzzFunc.FindStringSubmatch(sc.Text()); m != nil {
				found = append(found, fuzzTarget{pkg: filepath.ToSlash(rel), name: m[1]})
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
