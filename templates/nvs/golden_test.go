package nvs

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

var _ templates.Format = Format{}

// testdata is where the goldens made by Espressif's generator live; see its
// README.md for the command that made each one.
const testdata = "../../testdata/nvs"

// goldens: input CSV, golden image, size and version exactly as passed to
// nvs_partition_gen.py 0.2.0.
var goldens = []struct {
	csv, bin, size string
	v              Version
}{
	{"strings_v2.csv", "strings_v2.bin", "0x3000", V2},
	{"strings_v2.csv", "strings_v1.bin", "0x3000", V1},
	{"ints.csv", "ints_v2.bin", "0x3000", V2},
	{"ints.csv", "ints_v1.bin", "0x3000", V1},
	{"blobs_v2.csv", "blobs_v2.bin", "0x6000", V2},
	{"blobs_v1.csv", "blobs_v1.bin", "0x6000", V1},
	{"namespaces_v2.csv", "namespaces_v2.bin", "0x6000", V2},
	{"page_edges_v2.csv", "page_edges_v2.bin", "0x6000", V2},
	{"cred_tencent.csv", "cred_tencent.bin", "0x6000", V2},
	{"cred_tencent.csv", "cred_tencent_ro.bin", "0x2000", V2},
	{"cred_aliyun.csv", "cred_aliyun.bin", "0x3000", V2},
	{"cred_tencent_cert.csv", "cred_tencent_cert.bin", "0x6000", V2},
	{"cred_tencent_cert.csv", "cred_tencent_cert_v1.bin", "0x6000", V1},
	{"cred_tencent_cert.csv", "cred_tencent_cert_ro.bin", "0x2000", V2},
	{"mfg/dev0001.csv", "mfg/dev0001.bin", "0x6000", V2},
	{"mfg/dev0500.csv", "mfg/dev0500.bin", "0x6000", V2},
	{"mfg/dev1000.csv", "mfg/dev1000.bin", "0x6000", V2},
}

func generateFile(t testing.TB, csvName, size string, v Version) []byte {
	t.Helper()
	path := filepath.Join(testdata, csvName)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseCSV(f, filepath.Dir(path))
	if err != nil {
		t.Fatalf("ParseCSV(%s): %v", csvName, err)
	}
	n, err := ParseSize(size)
	if err != nil {
		t.Fatal(err)
	}
	img, err := Generate(entries, n, v)
	if err != nil {
		t.Fatalf("Generate(%s): %v", csvName, err)
	}
	return img
}

// sameBytes reports the first differing offset with its page and entry, so a
// mismatch points at the structure to look at.
func sameBytes(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	where := fmt.Sprintf("page %d byte %d", i/pageSize, i%pageSize)
	if in := i % pageSize; in >= firstEntry {
		where += fmt.Sprintf(" (entry %d byte %d)", (in-firstEntry)/entrySize, (in-firstEntry)%entrySize)
	}
	if i == n {
		t.Fatalf("length %d, golden %d (equal up to there)", len(got), len(want))
	}
	lo, hi := i&^15, min(i&^15+32, n)
	t.Fatalf("first difference at offset 0x%X, %s: got %02x, golden %02x\n got    % x\n golden % x",
		i, where, got[i], want[i], got[lo:hi], want[lo:hi])
}

func TestGoldenBytes(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.bin, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(testdata, g.bin))
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, generateFile(t, g.csv, g.size, g.v), want)
		})
	}
}

// TestGoldenRead reads every golden back and compares the items with values
// taken from the CSV text by csvOracle, not from ParseCSV or the writer.
func TestGoldenRead(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.bin, func(t *testing.T) {
			img, err := os.ReadFile(filepath.Join(testdata, g.bin))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Read(img)
			if err != nil {
				t.Fatal(err)
			}
			want := csvOracle(t, filepath.Join(testdata, g.csv))
			if len(got) != len(want) {
				t.Fatalf("read %d items, the CSV has %d", len(got), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("item %d:\n got  %+v\n want %+v", i, short(got[i]), short(want[i]))
				}
			}
		})
	}
}

func short(it Item) Item {
	if s, ok := it.Value.(string); ok && len(s) > 60 {
		it.Value = s[:60] + "…"
	}
	if b, ok := it.Value.([]byte); ok && len(b) > 24 {
		it.Value = fmt.Sprintf("%x… (%d bytes)", b[:24], len(b))
	}
	return it
}

// csvOracle is a deliberately separate reading of the goldens' CSVs with the
// standard library (encoding/csv, strconv, encoding/hex, encoding/base64),
// enough for the encodings the goldens use. It applies the generator's
// reopened-namespace rule explicitly: data goes under the newest namespace.
func csvOracle(t *testing.T, path string) []Item {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment, r.FieldsPerRecord = '#', -1
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	var items []Item
	seen, newest := map[string]bool{}, ""
	for _, row := range rows[1:] {
		key, typ, enc, val := row[col["key"]], row[col["type"]], row[col["encoding"]], row[col["value"]]
		if typ == "namespace" {
			if !seen[key] {
				seen[key], newest = true, key
			}
			continue
		}
		if typ == "file" {
			b, err := os.ReadFile(filepath.Join(filepath.Dir(path), val))
			if err != nil {
				t.Fatal(err)
			}
			val = string(b)
		}
		it := Item{Namespace: newest, Key: key}
		lower := strings.ToLower(enc)
		num := strings.ReplaceAll(strings.TrimSpace(val), "_", "")
		switch {
		case lower == "string":
			it.Kind, it.Value = String, val
		case lower == "binary":
			it.Kind, it.Value = Blob, []byte(val)
		case lower == "hex2bin":
			b, err := hex.DecodeString(strings.TrimSpace(val))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			it.Kind, it.Value = Blob, b
		case lower == "base64":
			b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(val), ""))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			it.Kind, it.Value = Blob, b
		case strings.HasPrefix(lower, "blob_"):
			var n int
			var pad byte
			sz := strings.HasPrefix(lower, "blob_sz_fill")
			format := "blob_fill(%d;0x%x)"
			if sz {
				format = "blob_sz_fill(%d;0x%x)"
			}
			if _, err := fmt.Sscanf(lower, format, &n, &pad); err != nil {
				t.Fatalf("%s: %v", enc, err)
			}
			var b []byte
			if sz {
				b = []byte{byte(len(val)), 0, 0, 0}
			}
			b = append(b, val...)
			b = append(b, bytes.Repeat([]byte{pad}, n-len(val))...)
			it.Kind, it.Value = Blob, b
		case lower[0] == 'u':
			v, err := strconv.ParseUint(strings.TrimPrefix(num, "+"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			it.Kind, it.Value = map[string]Kind{"u8": U8, "u16": U16, "u32": U32, "u64": U64}[lower], v
		case lower[0] == 'i':
			v, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			it.Kind, it.Value = map[string]Kind{"i8": I8, "i16": I16, "i32": I32, "i64": I64}[lower], v
		default:
			t.Fatalf("oracle: encoding %q", enc)
		}
		items = append(items, it)
	}
	return items
}

// TestGoldenLayout pins the quirks the goldens were chosen for, so that a
// change of golden that loses them is noticed.
func TestGoldenLayout(t *testing.T) {
	img, err := os.ReadFile(filepath.Join(testdata, "page_edges_v2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(page, i int) []byte {
		off := page*pageSize + firstEntry + i*entrySize
		return img[off : off+entrySize]
	}
	// The 3968-byte string would fill page 0 exactly: it is on page 1.
	if e := entry(1, 0); e[1] != typeSZ || string(e[8:12]) != "full" || e[2] != 125 {
		t.Errorf("page 1 entry 0 = % x, want the string \"full\" spanning 125 entries", e)
	}
	// The blob at entry 125 starts with a zero-length chunk there.
	if e := entry(1, 125); e[1] != typeBlobData || e[2] != 1 || e[3] != 0 || e[24] != 0 || e[25] != 0 {
		t.Errorf("page 1 entry 125 = % x, want an empty BLOB_DATA chunk 0", e)
	}
	// The 3904-byte blob fills page 2; its index is alone at the top of page 3.
	if e := entry(3, 0); e[1] != typeBlobIdx || string(e[8:13]) != "exact" {
		t.Errorf("page 3 entry 0 = % x, want the BLOB_IDX of \"exact\"", e)
	}
	// Pages 0..3 FULL, page 4 ACTIVE, page 5 (reserved) blank.
	for p, want := range []uint32{stateFull, stateFull, stateFull, stateFull, stateActive, stateEmpty} {
		if got := uint32(img[p*pageSize]) | uint32(img[p*pageSize+1])<<8 | uint32(img[p*pageSize+2])<<16 | uint32(img[p*pageSize+3])<<24; got != want {
			t.Errorf("page %d state 0x%08X, want 0x%08X", p, got, want)
		}
	}
	// The reopened namespaces: d and e are stored under "third".
	img, _ = os.ReadFile(filepath.Join(testdata, "namespaces_v2.bin"))
	items, err := Read(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if (it.Key == "d" || it.Key == "e") && it.Namespace != "third" {
			t.Errorf("%s is in namespace %q, the generator puts it in \"third\"", it.Key, it.Namespace)
		}
	}
}

// credentials from mfg/values.csv, the 1,000-device input of the benchmark.
func mfgCredentials(t testing.TB) []registry.Credential {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, "mfg/values.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var creds []registry.Credential
	for _, r := range rows[1:] {
		creds = append(creds, registry.Credential{Platform: "tencent", ProductID: r[1], DeviceName: r[2], DeviceSecret: r[3], Region: r[4]})
	}
	return creds
}

// mfgCSV is the per-device CSV, as the awk command in testdata/nvs/README.md
// writes it for the Python generator.
func mfgCSV(c registry.Credential) string {
	return "key,type,encoding,value\nqcloud-key,namespace,,\n" +
		"product_id,data,string," + c.ProductID + "\n" +
		"device_name,data,string," + c.DeviceName + "\n" +
		"device_secret,data,string," + c.DeviceSecret + "\n" +
		"region,data,string," + c.Region + "\n"
}

func mfgManifest(t testing.TB) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, "mfg/sha256.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if ok {
			m[strings.TrimSuffix(name, ".bin")] = sum
		}
	}
	return m
}

// TestMfg1000 checks all 1,000 partitions Espressif's generator made (their
// SHA-256 is in mfg/sha256.txt), through both paths: the per-device CSV and
// Format.Render of the credential.
func TestMfg1000(t *testing.T) {
	manifest := mfgManifest(t)
	creds := mfgCredentials(t)
	if len(creds) != 1000 || len(manifest) != 1000 {
		t.Fatalf("%d credentials, %d manifest lines, want 1000 each", len(creds), len(manifest))
	}
	for _, c := range creds {
		want := manifest[c.DeviceName]
		entries, err := ParseCSV(strings.NewReader(mfgCSV(c)), "")
		if err != nil {
			t.Fatal(err)
		}
		img, err := Generate(entries, 0x6000, V2)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(img)); got != want {
			t.Fatalf("%s via CSV: sha256 %s, generator's %s", c.DeviceName, got, want)
		}
		img, err = Format{}.Render(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(img)); got != want {
			t.Fatalf("%s via Render: sha256 %s, generator's %s", c.DeviceName, got, want)
		}
	}
}

func TestRenderGolden(t *testing.T) {
	tests := []struct {
		name string
		f    Format
		c    registry.Credential
		bin  string
	}{
		{"tencent", Format{}, registry.Credential{Platform: "tencent", ProductID: "ABCDEFGHIJ", DeviceName: "dev0001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}, "cred_tencent.bin"},
		{"tencent read-only", Format{Size: 0x2000, Version: V2, Keys: TencentKeys}, registry.Credential{ProductID: "ABCDEFGHIJ", DeviceName: "dev0001", DeviceSecret: "7WmFA/MEs+Fy+32QwJWtYw==", Region: "ap-guangzhou"}, "cred_tencent_ro.bin"},
		{"aliyun", Format{Size: 0x3000}, registry.Credential{Platform: "aliyun", ProductID: "a1Xyz0AbCdE", DeviceName: "dev0001", DeviceSecret: "dsj3RuY74pgCBJ3zczKz1LaLK7RGApqh", Region: "cn-shanghai"}, "cred_aliyun.bin"},
		{"aliyun gateway with its kit", Format{Size: 0x4000}, registry.Credential{Platform: "aliyun", ProductID: "a1GwPrd0001", DeviceName: "gw0001", DeviceSecret: "dsj3RuY74pgCBJ3zczKz1LaLK7RGApqh",
			Kit: &registry.Kit{SubProduct: "a1SubPrd001", SubDevices: []string{"sub-0001", "sub-0002", "sub-0003"}}}, "cred_aliyun_gateway.bin"},
		{"tencent cert", Format{}, certCredential(t), "cred_tencent_cert.bin"},
		{"tencent cert v1", Format{Version: V1}, certCredential(t), "cred_tencent_cert_v1.bin"},
		{"tencent cert read-only", Format{Size: 0x2000}, certCredential(t), "cred_tencent_cert_ro.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(testdata, tt.bin))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tt.f.Render(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			sameBytes(t, got, want)
		})
	}
}

// certCredential is the certificate device of cred_tencent_cert.csv: the
// certificate and key files beside it (made by openssl, testdata/nvs/README.md).
func certCredential(t *testing.T) registry.Credential {
	t.Helper()
	cert, err := os.ReadFile(filepath.Join(testdata, "files/dev_cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(testdata, "files/dev_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return registry.Credential{Platform: "tencent", ProductID: "CERTPROD01", DeviceName: "dev0001", Region: "ap-guangzhou",
		DeviceCert: string(cert), DevicePrivateKey: string(key)}
}
