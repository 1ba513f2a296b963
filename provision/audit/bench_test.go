package audit

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/provision/ledger/ledgertest"
)

// BenchmarkWrite100k writes the record of 100,000 boards and reports peak Go
// heap and peak RSS of the process while writing (DESIGN.md §7: < 100 MB).
//
// With History the Events sheet (100,000 more rows) is added; excelize's
// second stream buffer takes it past the target, which is why it is opt-in.
//
//	go test ./provision/audit -run '^$' -bench Write100k -benchtime 1x
func BenchmarkWrite100k(b *testing.B) {
	for _, history := range []bool{false, true} {
		b.Run(fmt.Sprintf("history=%v", history), func(b *testing.B) { benchWrite100k(b, history) })
	}
}

func benchWrite100k(b *testing.B, history bool) {
	const n = 100_000
	dir := b.TempDir()
	db := filepath.Join(dir, "big.db")
	if err := ledgertest.Fill(db, "tencent", "P1", n, t0); err != nil {
		b.Fatal(err)
	}
	l, err := ledger.Open(db)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	out := filepath.Join(dir, "audit.xlsx")

	// Measure the write, not the fill: return the fill's memory to the OS
	// and reset the kernel's high-water mark (VmHWM) where Linux allows it.
	runtime.GC()
	debug.FreeOSMemory()
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil

	var peakHeap, peakRSS uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapAlloc)
			peakRSS = max(peakRSS, procStatus("VmRSS"))
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	b.ResetTimer()
	for b.Loop() {
		sum, err := Write(l, out, Options{Station: "bench", History: history})
		if err != nil {
			b.Fatal(err)
		}
		if sum.Units != n {
			b.Fatalf("%d units, want %d", sum.Units, n)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if hwm := procStatus("VmHWM"); hwmReset && hwm > peakRSS {
		peakRSS = hwm // the kernel saw a peak between samples
	}
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peakRSS)/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	if fi, err := os.Stat(out); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
	}

	// The sheet really holds every board: count rows with the streaming reader.
	f, err := excelize.OpenFile(out)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rows, err := f.Rows(SheetUnits)
	if err != nil {
		b.Fatal(err)
	}
	count := 0
	for rows.Next() {
		count++
	}
	rows.Close()
	if count != n+1 {
		b.Errorf("Units has %d rows, want %d + header", count, n)
	}
}

// procStatus reads a "kB" field of /proc/self/status, in bytes; 0 if absent.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
