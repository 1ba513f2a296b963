package emulator

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/iotburn/iotburn/registry/devauth"
)

// BenchmarkAliyunGateway1500 is one gateway bringing 1,500 sub-devices in
// over real MQTT, as a gateway does on its first connect: thing/sub/register
// (30 a request), thing/topo/add (30 a request, each entry signed),
// combine/login one by one at the documented 200 a second (a 429 is waited
// out), beside its fair reference in the same run: 1,500 directly connected
// devices each logging in once (CONNECT with its signed password, CONNACK,
// DISCONNECT). Setup (the emulator, the names, the gateway's own login) is
// outside the timer.
//
//	go test -run '^$' -bench AliyunGateway1500 -benchtime 1x ./registry/emulator/
func BenchmarkAliyunGateway1500(b *testing.B) {
	names := make([]string, AliyunMaxSubDevices)
	for i := range names {
		names[i] = fmt.Sprintf("sub-%05d", i)
	}
	b.Run("gateway-register-topo-login", func(b *testing.B) {
		var regTopo time.Duration
		for range b.N {
			b.StopTimer()
			w := gwStart(b, "")
			gwSecret := w.create(aliGwProduct, "gw-bench")[0]
			w.createBatch(aliSubProduct, names)
			g := w.login(aliGwProduct, "gw-bench", gwSecret)
			b.StartTimer()
			t0 := time.Now()
			secrets := g.registerAll(names)
			if err := g.addAll(names, secrets); err != nil {
				b.Fatal(err)
			}
			regTopo += time.Since(t0)
			g.loginAll(names, secrets)
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1500-subdevices")
		b.ReportMetric(float64(regTopo.Milliseconds())/float64(b.N), "ms-register+topo")
		// The floor of the logins: 1,500 at 200 a second, the first 200 at once.
		b.ReportMetric(float64(AliyunMaxSubDevices-aliGwLoginQPS)/aliGwLoginQPS*1000, "ms-login-floor")
	})
	b.Run("reference-1500-direct-logins", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			w := gwStart(b, "")
			w.createBatch(aliSubProduct, names)
			secrets := map[string]string{}
			for _, n := range names {
				secrets[n], _ = w.e.AliyunDevice(aliSubProduct, n)
			}
			b.StartTimer()
			for _, n := range names {
				cid, user, pass := devauth.AliyunMQTT(aliSubProduct, n, secrets[n], time.Now())
				c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + w.mqtt).SetClientID(cid).
					SetUsername(user).SetPassword(pass).SetProtocolVersion(4).SetAutoReconnect(false))
				if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					b.Fatalf("login %s: %v", n, tok.Error())
				}
				c.Disconnect(0)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1500-logins")
	})
}

// loginAll logs every sub-device in through the gateway, waiting out 429s
// as a gateway paced by the cloud does.
func (g *gwClient) loginAll(names []string, secrets map[string]string) {
	g.t.Helper()
	for _, n := range names {
		for {
			code, r := g.combineLogin(aliSubProduct, n, secrets[n])
			if code == 200 {
				break
			}
			if code != aliGwRateLimit {
				g.t.Fatalf("combine/login %s: %d %v", n, code, r["message"])
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// BenchmarkAliyunGatewayMemory is the emulator's heap with 100 gateways
// × 1,500 sub-devices: the 150,100 devices created (the reference), then
// each gateway's sub-devices registered, in its topology and online, the
// gateways connected at once. Reported as MB of live heap after a GC,
// beyond the heap before the emulator started.
//
//	go test -run '^$' -bench AliyunGatewayMemory -benchtime 1x -timeout 30m ./registry/emulator/
func BenchmarkAliyunGatewayMemory(b *testing.B) {
	const gateways = 100
	for range b.N {
		base := liveHeap()
		w := gwStartWith(b, Config{Quota: 200000})
		gwNames := make([]string, gateways)
		for i := range gwNames {
			gwNames[i] = fmt.Sprintf("gw-%03d", i)
		}
		gwSecrets := w.create(aliGwProduct, gwNames...)
		perGw := make([][]string, gateways)
		var all []string
		for i := range perGw {
			perGw[i] = make([]string, AliyunMaxSubDevices)
			for j := range perGw[i] {
				perGw[i][j] = fmt.Sprintf("s%03d-%04d", i, j)
			}
			all = append(all, perGw[i]...)
		}
		w.createBatch(aliSubProduct, all)
		devices := liveHeap() - base

		var wg sync.WaitGroup
		errs := make(chan error, gateways)
		clients := make([]*gwClient, gateways)
		for i := range gateways {
			clients[i] = w.login(aliGwProduct, gwNames[i], gwSecrets[i])
		}
		for i := range gateways {
			wg.Add(1)
			go func(g *gwClient, names []string) {
				defer wg.Done()
				secrets := g.registerAll(names)
				if err := g.addAll(names, secrets); err != nil {
					errs <- err
					return
				}
				g.loginAll(names, secrets)
			}(clients[i], perGw[i])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		if got := w.topo(aliGwProduct, gwNames[gateways-1], 1, 50); got.Data.Total != AliyunMaxSubDevices {
			b.Fatalf("the last gateway's topology holds %d", got.Data.Total)
		}
		all, perGw = nil, nil // the harness's names: not the emulator's
		total := liveHeap() - base
		b.ReportMetric(float64(devices)/(1<<20), "MB-150100-devices")
		b.ReportMetric(float64(total)/(1<<20), "MB-with-100x1500-topology-online")
		b.ReportMetric(float64(total-devices)/float64(gateways*AliyunMaxSubDevices), "B/sub-device-topology-online")
		runtime.KeepAlive(w)
	}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
