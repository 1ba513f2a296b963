package nvs

import (
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
)

// BenchmarkRender: one 0x6000 Tencent credential partition, as the line
// renders it for each board.
func BenchmarkRender(b *testing.B) {
	c := registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev0001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}
	f := Format{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Render(c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "partitions/s")
}

// BenchmarkMfg1000 is the Go side of the "Measured" comparison in
// testdata/nvs/README.md: the same 1,000 per-device CSVs the Python
// generator was run on, each parsed and generated (0x6000, v2). One op is
// all 1,000 devices.
func BenchmarkMfg1000(b *testing.B) {
	creds := mfgCredentials(b)
	csvs := make([]string, len(creds))
	for i, c := range creds {
		csvs[i] = mfgCSV(c)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, text := range csvs {
			entries, err := ParseCSV(strings.NewReader(text), "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := Generate(entries, 0x6000, V2); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(csvs))/b.Elapsed().Seconds(), "partitions/s")
}

// BenchmarkRead: reading one credential partition back (QA's verify).
func BenchmarkRead(b *testing.B) {
	img, err := Format{}.Render(registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev0001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Read(img); err != nil {
			b.Fatal(err)
		}
	}
}
