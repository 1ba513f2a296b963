// Package emulator serves IoT cloud APIs locally: Tencent Cloud IoT Hub
// (iotcloud, API 3.0, version 2018-06-14) and Alibaba Cloud IoT Platform (Iot,
// RPC, version 2018-01-20, in aliyun*.go), with the clouds' signature checks,
// asynchronous batch tasks, quotas, per-action rate limits and error codes. It
// is a product feature (`iotburn sim cloud`, `iotburn demo`), so its state can
// be persisted and survives restarts. Certificate products (Config.CertProducts,
// AliyunCertProducts) get an X.509 certificate and private key per device from
// the emulator's own CA (ca.go, StateDir/ca.pem), and log in on the broker's
// mutual-TLS listener (mqtt_tls.go).
//
// One http.Handler serves every vendor: ServeHTTP picks the vendor from the
// request's shape (routes), so another vendor's API (Alibaba Cloud RPC) is
// added in its own files by appending one route in New.
package emulator

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config configures an Emulator.
type Config struct {
	// StateDir persists the state ("" = memory only). Everything acknowledged
	// to a client is on disk before the answer is sent.
	StateDir string
	// SecretID and SecretKey are the only accepted key pair.
	SecretID, SecretKey string
	// Products are Tencent ProductIds created on first start if missing, as
	// key-authenticated products (DescribeProducts' EncryptionType "2").
	Products []string
	// CertProducts are Tencent ProductIds created on first start if
	// missing, as certificate-authenticated products (EncryptionType "1"):
	// each device gets an X.509 certificate and private key issued by the
	// emulator's CA (CACertPEM, StateDir/ca.pem). A product keeps the type it
	// was created with: naming an existing product in the other list is an
	// error at start.
	CertProducts []string
	// GatewayProducts and SubDeviceProducts are Tencent ProductIds created
	// on first start if missing as key-authenticated gateway products
	// (ProductType 5) and products whose devices are bound to gateways as
	// sub-devices (tencent_gateway.go). A product keeps its kind.
	GatewayProducts, SubDeviceProducts []string
	// AliyunAccessKeyID and AliyunAccessKeySecret are the only accepted
	// Alibaba Cloud AccessKey pair; empty = Aliyun requests are all refused
	// (InvalidAccessKeyId.NotFound).
	AliyunAccessKeyID, AliyunAccessKeySecret string
	// AliyunProducts are Aliyun ProductKeys created on first start if
	// missing, as device-secret products (QueryProduct's AuthType "secret").
	AliyunProducts []string
	// AliyunCertProducts are Aliyun ProductKeys created on first start if
	// missing, as X.509 products (AuthType "x509"), as CertProducts.
	AliyunCertProducts []string
	// AliyunGatewayProducts and AliyunSubDeviceProducts are Aliyun
	// ProductKeys created on first start if missing as device-secret
	// gateway products (CreateProduct NodeType 1) and sub-device products
	// (NodeType 0 with a ProtocolType: devices that connect through a
	// gateway), aliyun_gateway.go. A product keeps the node type it was
	// created with.
	AliyunGatewayProducts, AliyunSubDeviceProducts []string
	// CertDelay is how long after an Aliyun X.509 device is created its
	// certificate stays "生成中" (QueryDeviceCert Status 0) before it can be
	// downloaded (Status 2). 0 = the default, 300 ms; < 0 = at once. The
	// cloud's time is not published. [NOT FROM A SOURCE]
	CertDelay time.Duration
	// TaskDelay is how long a CreateMultiDevice task takes before its devices
	// exist. 0 = the default, 300 ms + 2 ms per device; < 0 = immediately.
	// For Aliyun it is the length of each phase of an application (the name
	// check, then the creation); 0 = 200 ms + 20 µs a name to check and
	// 300 ms + 100 µs a name to create.
	TaskDelay time.Duration
	// RateLimit is requests per second per action (0 = 20, < 0 = unlimited).
	// For Aliyun, 0 means each action's documented QPS (AliyunQPS).
	RateLimit int
	// Quota is the most devices a product may hold (0 = 50,000).
	Quota int
	// MaxPendingTasks is how many CreateMultiDevice tasks may be unfinished
	// (TaskStatus 0 or 1) at once before another CreateMultiDevice is refused
	// with LimitExceeded.PengingOrProcessingTasksExceedLimit (0 = 10,
	// < 0 = no limit). The code and its words "等待和处理中的任务数过多" are
	// the SDK's (tencentcloud-sdk-go iotcloud/v20180614/errors.go); the SDK
	// lists it for CreateTask, not CreateMultiDevice, and Tencent publishes
	// no number: both the limit on CreateMultiDevice and the 10 are the
	// emulator's, the harsher reading. [NOT FROM A SOURCE]
	MaxPendingTasks int
	// Log, if set, gets one line per request: action, product, result code.
	// Never a secret.
	Log *slog.Logger
	// Now is the clock (nil = time.Now); tests move it.
	Now func() time.Time
	// DynReg are the device-side registration settings every product gets
	// at its first start (zero = all off, as on the clouds); DynRegProducts
	// overrides them per product, keyed "tencent:<ProductId>" or
	// "aliyun:<ProductKey>". Later starts keep the settings on disk
	// (SetProductSettings changes them).
	DynReg         ProductSettings
	DynRegProducts map[string]ProductSettings
}

const (
	defaultRateLimit = 20
	defaultQuota     = 50000
	// defaultMaxPendingTasks: see Config.MaxPendingTasks.
	defaultMaxPendingTasks = 10
	maxBody                = 1 << 20
)

// Emulator is the local cloud. It is safe for concurrent use.
type Emulator struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	routes  []route
	limiter *rateLimiter
	faults  *faults

	mu      sync.Mutex // guards everything below
	closed  bool
	journal *journal // nil when memory only
	tc      *tencentState
	ali     *aliyunState
	dr      *dynregState

	jobs map[string]*certJob // certificates being issued, by task; guarded by mu

	workers *certWorkers
	caMu    sync.Mutex // guards ca; may be taken with mu held
	ca      *certAuthority

	mqttMu    sync.Mutex // guards broker and tlsBroker; never held together with mu (see Close)
	broker    *mqttBroker
	tlsBroker *mqttBroker
}

// route sends the requests a vendor recognises as its own to that vendor.
type route struct {
	vendor string
	match  func(*http.Request) bool
	serve  func(http.ResponseWriter, *http.Request)
}

// New starts an emulator, loading StateDir if it holds an earlier state.
func New(cfg Config) (*Emulator, error) {
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, errors.New("emulator: SecretID and SecretKey are required")
	}
	if cfg.Quota == 0 {
		cfg.Quota = defaultQuota
	}
	if cfg.MaxPendingTasks == 0 {
		cfg.MaxPendingTasks = defaultMaxPendingTasks
	}
	aliyunRate := cfg.RateLimit // before the Tencent default replaces 0
	if cfg.RateLimit == 0 {
		cfg.RateLimit = defaultRateLimit
	}
	e := &Emulator{
		cfg:    cfg,
		now:    cfg.Now,
		log:    cfg.Log,
		faults: newFaults(),
		tc:     newTencentState(),
		dr:     newDynregState(),
		jobs:   map[string]*certJob{},
	}
	e.workers = newCertWorkers(e)
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e.limiter = newRateLimiter(cfg.RateLimit, e.now)
	e.ali = newAliyunState(newAliyunFront(aliyunRate, e.now))
	e.routes = []route{
		// First: the device endpoints are told apart by path, and Tencent's
		// carry X-TC-* headers that would otherwise look like API 3.0.
		{vendor: "dynreg", match: isDynRegRequest, serve: e.serveDynReg},
		{vendor: "tencent", match: isTencentRequest, serve: e.serveTencent},
		{vendor: "aliyun", match: isAliyunRequest, serve: e.serveAliyun},
	}

	if cfg.StateDir != "" {
		j, err := openJournal(cfg.StateDir, e.replay)
		if err != nil {
			return nil, fmt.Errorf("emulator: loading state from %s: %w", cfg.StateDir, err)
		}
		e.journal = j
		// Rewrite the journal as a snapshot, dropping what the last run no
		// longer needs, so it does not grow without bound across restarts.
		if err := j.compact(e.snapshot()); err != nil {
			j.close()
			return nil, fmt.Errorf("emulator: compacting state in %s: %w", cfg.StateDir, err)
		}
	}
	if err := e.ensureProducts(); err != nil {
		if e.journal != nil {
			e.journal.close()
		}
		return nil, err
	}
	// A state with certificate products needs its CA now: certificates
	// issued before a restart must keep verifying, and a missing half of
	// the CA must be reported at start, not at the first login.
	if e.hasCertProducts() {
		if _, err := e.authority(); err != nil {
			if e.journal != nil {
				e.journal.close()
			}
			return nil, err
		}
	}
	return e, nil
}

func (e *Emulator) ensureProducts() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, set := range []struct {
		ids  []string
		cert bool
		node int
	}{{e.cfg.Products, false, tcNodeDevice}, {e.cfg.CertProducts, true, tcNodeDevice},
		{e.cfg.GatewayProducts, false, tcNodeGateway}, {e.cfg.SubDeviceProducts, false, tcNodeSubDevice}} {
		for _, p := range set.ids {
			if err := e.tcEnsureProduct(p, set.cert, set.node); err != nil {
				return fmt.Errorf("emulator: product %q: %w", p, err)
			}
		}
	}
	for _, set := range []struct {
		keys []string
		cert bool
		node int
	}{{e.cfg.AliyunProducts, false, aliNodeDevice}, {e.cfg.AliyunCertProducts, true, aliNodeDevice},
		{e.cfg.AliyunGatewayProducts, false, aliNodeGateway}, {e.cfg.AliyunSubDeviceProducts, false, aliNodeSubDevice}} {
		for _, p := range set.keys {
			if err := e.aliEnsureProduct(p, set.cert, set.node); err != nil {
				return fmt.Errorf("emulator: aliyun product %q: %w", p, err)
			}
		}
	}
	if err := e.drInit(); err != nil {
		return fmt.Errorf("emulator: product settings: %w", err)
	}
	return nil
}

func (e *Emulator) hasCertProducts() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range e.tc.products {
		if p.Cert {
			return true
		}
	}
	for _, p := range e.ali.products {
		if p.X509 {
			return true
		}
	}
	return false
}

// ServeHTTP answers one API request of whichever vendor it belongs to.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, rt := range e.routes {
		if rt.match(r) {
			rt.serve(w, r)
			return
		}
	}
	http.Error(w, "iotburn emulator: not a cloud API request this emulator knows "+
		"(Tencent API 3.0 requests carry X-TC-Action and a TC3-HMAC-SHA256 Authorization header; "+
		"Alibaba Cloud RPC requests carry Action and SignatureMethod parameters)",
		http.StatusBadRequest)
}

// Close stops the MQTT broker, flushes and closes the state; later requests
// are answered with InternalError.
func (e *Emulator) Close() error {
	// The broker's hooks take e.mu, so it is stopped before e.mu is held.
	e.stopMQTT()
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true // no request starts a certificate job from now on
	var err error
	if e.journal != nil {
		err = e.journal.close()
	}
	e.mu.Unlock()
	e.workers.close()
	return err
}

// InjectFault makes the next n requests of action fail with the vendor error
// code (e.g. "InternalError", "RequestLimitExceeded"). A code of the form
// "delay:<duration>" (e.g. "delay:2s") instead delays those requests, which are
// then served normally. Faults strike after the signature check, so a faulted
// request is still an authenticated one.
func (e *Emulator) InjectFault(action string, n int, code string) {
	f := fault{code: code}
	if d, ok := strings.CutPrefix(code, "delay:"); ok {
		if dur, err := time.ParseDuration(d); err == nil {
			f = fault{delay: dur}
		}
	}
	e.faults.add(action, n, f)
}

// replay applies one journal record while loading.
func (e *Emulator) replay(rec record) error {
	switch rec.Vendor {
	case "tencent":
		return e.tc.apply(rec.Op, rec.Data)
	case "aliyun":
		return e.ali.apply(rec.Op, rec.Data)
	case "dynreg":
		return e.drApply(rec.Op, rec.Data)
	default:
		return fmt.Errorf("record of unknown vendor %q", rec.Vendor)
	}
}

// snapshot is the whole state as journal records.
func (e *Emulator) snapshot() []record {
	now := e.now()
	recs := append(e.tc.snapshot(now), e.ali.snapshot(now)...)
	// After the vendors' records: settings and registrations name their products.
	return append(recs, e.dr.snapshot()...)
}

// commit persists records, then applies them: what a client is told has
// happened is on disk first. Replay runs the same apply, so a restart rebuilds
// exactly this state. Called with e.mu held.
func (e *Emulator) commit(recs ...record) error {
	if e.journal != nil {
		if err := e.journal.append(recs); err != nil {
			return err
		}
	}
	for _, rec := range recs {
		if err := e.replay(rec); err != nil {
			return err
		}
	}
	return nil
}
