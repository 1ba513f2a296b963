package cmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// --product takes tencent:PID and aliyun:PK, with :cert for a certificate
// product, :gateway and :subdevice for gateways and sub-devices; anything else is a usage error before anything starts.
func TestSimCloudProductFlag(t *testing.T) {
	tests := []struct {
		specs []string
		want  simProducts
		bad   string // a piece of the error; "" = accepted
	}{
		{[]string{"tencent:ABCDEFGHIJ", "aliyun:a1Xyz"}, simProducts{tencent: []string{"ABCDEFGHIJ"}, aliyun: []string{"a1Xyz"}}, ""},
		{[]string{"tencent:CERTPRODUC:cert", "aliyun:a1X509:cert", "tencent:KEYPRODUCT"},
			simProducts{tencent: []string{"KEYPRODUCT"}, tencentCert: []string{"CERTPRODUC"}, aliyunCert: []string{"a1X509"}}, ""},
		{[]string{"aliyun:a1Gw:gateway", "aliyun:a1Sub:subdevice", "tencent:GWPRODUCT1:gateway", "tencent:SUBPRODUC1:subdevice"},
			simProducts{aliyunGateway: []string{"a1Gw"}, aliyunSubDevice: []string{"a1Sub"},
				tencentGateway: []string{"GWPRODUCT1"}, tencentSubDevice: []string{"SUBPRODUC1"}}, ""},
		{[]string{"tencent:P1:bridge"}, simProducts{}, "not a product kind"},
		{[]string{"tencent:P1:cert:x"}, simProducts{}, "write it as"},
		{[]string{"tencent:"}, simProducts{}, "write it as"},
		{[]string{"huawei:P1"}, simProducts{}, "tencent or aliyun"},
		{[]string{"tencent:P1", "tencent:P1:cert"}, simProducts{}, "twice"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.specs, " "), func(t *testing.T) {
			got, err := parseSimProducts(tt.specs)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("%v, want an error about %q", err, tt.bad)
				}
				_, _, rerr := run(t, append([]string{"sim", "cloud", "--state", t.TempDir(), "--listen", "127.0.0.1:0"},
					productFlags(tt.specs)...)...)
				if !errors.Is(rerr, errUsage) {
					t.Fatalf("sim cloud: %v, want a usage error", rerr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%+v %v, want %+v", got, err, tt.want)
			}
		})
	}
}

func productFlags(specs []string) []string {
	var out []string
	for _, s := range specs {
		out = append(out, "--product", s)
	}
	return out
}

// lockedBuffer is a bytes.Buffer safe to read while a command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// sim cloud with certificate products starts the mutual-TLS listener and
// keeps its CA in --state (ca.pem and its key, 0600).
func TestSimCloudCertProducts(t *testing.T) {
	state := filepath.Join(t.TempDir(), "cloud")
	out := &lockedBuffer{}
	g := &globals{out: out, errOut: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- execute(ctx, newRoot(g), []string{"sim", "cloud", "--state", state, "--listen", "127.0.0.1:0",
			"--mqtt-listen", "127.0.0.1:0", "--mqtts-listen", "127.0.0.1:0",
			"--product", "tencent:CERTPRODUC:cert", "--product", "aliyun:a1X509:cert"})
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "mutual TLS") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no TLS listener announced:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		st, err := os.Stat(filepath.Join(state, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	for _, want := range []string{"CERTPRODUC (certificates)", "a1X509 (certificates)", filepath.Join(state, "ca.pem")} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
