package emulator

// Alibaba Cloud IoT Platform state: products, devices, and batch-registration
// applications (ApplyIds). Every change goes through apply, both live (after
// the journal write) and on replay, so a restart rebuilds exactly what clients
// were told. Records are journalled under vendor "aliyun" in the same journal
// as Tencent's.
//
// An application moves CHECK → CHECK_SUCCESS | CHECK_FAILED (BatchCheckDeviceNames,
// then time), CHECK_SUCCESS → CREATE (BatchRegisterDeviceWithApplyId) →
// CREATE_SUCCESS | CREATE_FAILED (time). BatchRegisterDevice (random names)
// starts in CREATE. While in CREATE its names are reserved in the product.

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// Application statuses, QueryBatchRegisterDeviceStatus.Data.Status (doc 69483).
const (
	aliCheck         = "CHECK"
	aliCheckSuccess  = "CHECK_SUCCESS"
	aliCheckFailed   = "CHECK_FAILED"
	aliCreate        = "CREATE"
	aliCreateSuccess = "CREATE_SUCCESS"
	aliCreateFailed  = "CREATE_FAILED"
)

type aliyunState struct {
	front *aliyunFront // not journalled: limiters and nonces

	products  map[string]*aliProduct
	apps      map[int64]*aliApp
	pending   []*aliApp              // apps in CHECK or CREATE, oldest first
	byIotID   map[string][2]string   // IotId → {ProductKey, DeviceName}
	byCert    map[[32]byte][2]string // SHA-256 of an X.509 device's certificate → {ProductKey, DeviceName}
	nextApply int64

	// topo: gateways and their sub-devices (aliyun_gateway.go).
	topo topology
}

type aliProduct struct {
	Key     string
	Secret  string // ProductSecret (QueryProduct shows it)
	Created int64  // unix milliseconds
	// X509: QueryProduct's AuthType "x509" ("使用设备X.509证书进行设备身份认证",
	// ALIYUN::IOT::Product AuthType); its devices have a certificate and no
	// DeviceSecret.
	X509 bool
	// Node is the product's node type (aliyun_gateway.go): aliNodeDevice,
	// aliNodeGateway (CreateProduct NodeType 1) or aliNodeSubDevice
	// (NodeType 0 with a ProtocolType: its devices connect through a gateway).
	Node     int
	devices  map[string]*aliDevice
	reserved map[string]int64 // device name → ApplyId of the application creating it
}

type aliDevice struct {
	Name    string `json:"n"`
	Secret  string `json:"s"`
	IotID   string `json:"i"`
	Created int64  `json:"c"` // unix milliseconds
	// Activated is when the device first logged in over MQTT (unix
	// milliseconds; 0 = never): after it, dynamic registration is refused.
	Activated int64 `json:"act,omitempty"`
	// An X.509 device's certificate, private key (PEM) and CertSN, which
	// QueryDeviceCert hands out, on every call, once CertAt (unix
	// milliseconds) has passed: until then its Status is 0 "生成中".
	Cert   string `json:"cert,omitempty"`
	Key    string `json:"key,omitempty"`
	CertSN string `json:"sn,omitempty"`
	CertAt int64  `json:"cat,omitempty"`
}

// aliApp is one batch-registration application.
type aliApp struct {
	ID      int64        `json:"id"`
	Product string       `json:"p"`
	Names   []string     `json:"names"`
	Status  string       `json:"st"`
	Created int64        `json:"created"` // unix nanoseconds
	Due     int64        `json:"due"`     // unix nanoseconds: when the current phase ends
	Invalid []aliInvalid `json:"inv,omitempty"`
	Results []aliResult  `json:"res,omitempty"`
}

// aliInvalid is one name a check or a creation refused, with the reason.
type aliInvalid struct {
	Name string `json:"n"`
	Msg  string `json:"m"`
}

// aliResult is one device of a finished application; the cloud keeps it for
// QueryPageByApplyId even if the device is deleted later.
type aliResult struct {
	Name   string `json:"n"`
	Secret string `json:"s,omitempty"`
	IotID  string `json:"i,omitempty"`
	Err    string `json:"e,omitempty"`
	// An X.509 product's device: its certificate (see aliDevice).
	Cert   string `json:"cert,omitempty"`
	Key    string `json:"key,omitempty"`
	CertSN string `json:"sn,omitempty"`
}

// Journal payloads.
type (
	aliProductRec struct {
		Key     string `json:"k"`
		Secret  string `json:"s"`
		Created int64  `json:"c"`
		X509    bool   `json:"x509,omitempty"`
		Node    int    `json:"node,omitempty"`
	}
	aliDeviceRec struct {
		Product string `json:"p"`
		aliDevice
	}
	aliDeleteRec struct {
		Product string `json:"p"`
		Name    string `json:"n"`
	}
	aliCheckedRec struct {
		ID      int64        `json:"id"`
		Status  string       `json:"st"`
		Invalid []aliInvalid `json:"inv,omitempty"`
	}
	aliRegisterRec struct {
		ID  int64 `json:"id"`
		Due int64 `json:"due"`
	}
	aliCreatedRec struct {
		ID      int64       `json:"id"`
		At      int64       `json:"at"`            // unix milliseconds: the devices' create time
		CertAt  int64       `json:"cat,omitempty"` // unix milliseconds: when X.509 certificates become downloadable
		Results []aliResult `json:"res"`
	}
)

// aliFirstApplyID: ApplyIds are int64 in the API and look like 1295006 on
// the cloud; the emulator counts up from here.
const aliFirstApplyID = 1000001

func newAliyunState(front *aliyunFront) *aliyunState {
	return &aliyunState{front: front, products: map[string]*aliProduct{}, apps: map[int64]*aliApp{},
		byIotID: map[string][2]string{}, byCert: map[[32]byte][2]string{}, nextApply: aliFirstApplyID,
		topo: newTopology()}
}

func aliRecord(op string, v any) record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	return record{Vendor: "aliyun", Op: op, Data: b}
}

func (s *aliyunState) addDevice(p *aliProduct, d aliDevice) {
	if old := p.devices[d.Name]; old != nil {
		delete(s.byIotID, old.IotID)
		if old.Cert != "" {
			delete(s.byCert, pemFingerprint(old.Cert))
		}
	}
	p.devices[d.Name] = &d
	s.byIotID[d.IotID] = [2]string{p.Key, d.Name}
	if d.Cert != "" {
		s.byCert[pemFingerprint(d.Cert)] = [2]string{p.Key, d.Name}
	}
}

func (s *aliyunState) dropPending(a *aliApp) {
	for i, pa := range s.pending {
		if pa == a {
			s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
			return
		}
	}
}

func (s *aliyunState) apply(op string, data json.RawMessage) error {
	switch op {
	case "product":
		var r aliProductRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if s.products[r.Key] == nil {
			s.products[r.Key] = &aliProduct{Key: r.Key, Secret: r.Secret, Created: r.Created, X509: r.X509, Node: r.Node,
				devices: map[string]*aliDevice{}, reserved: map[string]int64{}}
		}
	case "device":
		var r aliDeviceRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		p := s.products[r.Product]
		if p == nil {
			return fmt.Errorf("device %s of unknown product %s", r.Name, r.Product)
		}
		s.addDevice(p, r.aliDevice)
	case "delete":
		var r aliDeleteRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if p := s.products[r.Product]; p != nil {
			if d := p.devices[r.Name]; d != nil {
				delete(s.byIotID, d.IotID)
				if d.Cert != "" {
					delete(s.byCert, pemFingerprint(d.Cert))
				}
				delete(p.devices, r.Name)
				s.topo.drop(topoKey(r.Product, r.Name))
			}
		}
	case "topo", "untopo":
		return s.applyTopo(op, data)
	case "apply":
		var a aliApp
		if err := json.Unmarshal(data, &a); err != nil {
			return err
		}
		p := s.products[a.Product]
		if p == nil {
			return fmt.Errorf("application %d of unknown product %s", a.ID, a.Product)
		}
		if s.apps[a.ID] != nil {
			return fmt.Errorf("application %d recorded twice", a.ID)
		}
		s.apps[a.ID] = &a
		s.nextApply = max(s.nextApply, a.ID+1)
		switch a.Status {
		case aliCreate:
			for _, n := range a.Names {
				p.reserved[n] = a.ID
			}
			s.pending = append(s.pending, &a)
		case aliCheck:
			s.pending = append(s.pending, &a)
		}
	case "checked":
		var r aliCheckedRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		a := s.apps[r.ID]
		if a == nil || a.Status != aliCheck {
			return fmt.Errorf("check result of unknown or checked application %d", r.ID)
		}
		a.Status, a.Invalid = r.Status, r.Invalid
		s.dropPending(a)
	case "register":
		var r aliRegisterRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		a := s.apps[r.ID]
		if a == nil || a.Status != aliCheckSuccess {
			return fmt.Errorf("registration of unknown or unchecked application %d", r.ID)
		}
		p := s.products[a.Product]
		a.Status, a.Due = aliCreate, r.Due
		for _, n := range a.Names {
			p.reserved[n] = a.ID
		}
		s.pending = append(s.pending, a)
	case "created":
		var r aliCreatedRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		a := s.apps[r.ID]
		if a == nil || a.Status != aliCreate {
			return fmt.Errorf("completion of unknown or finished application %d", r.ID)
		}
		p := s.products[a.Product]
		a.Status, a.Results = aliCreateSuccess, r.Results
		for _, n := range a.Names {
			if p.reserved[n] == a.ID {
				delete(p.reserved, n)
			}
		}
		for _, res := range r.Results {
			if res.Err != "" {
				a.Status = aliCreateFailed
				continue
			}
			s.addDevice(p, aliDevice{Name: res.Name, Secret: res.Secret, IotID: res.IotID, Created: r.At,
				Cert: res.Cert, Key: res.Key, CertSN: res.CertSN, CertAt: r.CertAt})
		}
		s.dropPending(a)
	default:
		return fmt.Errorf("unknown aliyun record %q", op)
	}
	return nil
}

// snapshot lists the state as records that rebuild it: products, their
// devices, then applications as they stand ("apply" records of finished
// applications carry their results without re-creating devices, so a device
// deleted since is not resurrected). Finished applications past the
// retention are dropped.
func (s *aliyunState) snapshot(now time.Time) []record {
	var recs []record
	keys := make([]string, 0, len(s.products))
	for k := range s.products {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := s.products[k]
		recs = append(recs, aliRecord("product", aliProductRec{Key: p.Key, Secret: p.Secret, Created: p.Created, X509: p.X509, Node: p.Node}))
		for _, n := range p.sortedNames() {
			recs = append(recs, aliRecord("device", aliDeviceRec{Product: p.Key, aliDevice: *p.devices[n]}))
		}
	}
	for _, t := range s.topo.records() { // after every device: topology names both ends
		recs = append(recs, aliRecord("topo", t))
	}
	ids := make([]int64, 0, len(s.apps))
	for id, a := range s.apps {
		if a.Status != aliCheck && a.Status != aliCreate && now.Sub(time.Unix(0, a.Created)) > taskRetention {
			continue
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		recs = append(recs, aliRecord("apply", s.apps[id]))
	}
	return recs
}

func (p *aliProduct) sortedNames() []string {
	names := make([]string, 0, len(p.devices))
	for n := range p.devices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// taken says why a name cannot be created now ("" if it can): it exists, or
// an application other than self is creating it.
func (p *aliProduct) taken(name string, self int64) string {
	if _, ok := p.devices[name]; ok {
		return "The device name already exists."
	}
	if id, ok := p.reserved[name]; ok && id != self {
		return fmt.Sprintf("The device name is being registered by application %d.", id)
	}
	return ""
}

// aliAdvance ends every phase whose time has come: checks report their
// verdict, creations make their devices, persisted before any answer can
// reveal them. Called with e.mu held.
func (e *Emulator) aliAdvance() error {
	now := e.now()
	s := e.ali
	var recs []record
	var done []string
	for _, a := range s.pending {
		if a.Due > now.UnixNano() {
			continue
		}
		p := s.products[a.Product]
		switch a.Status {
		case aliCheck:
			invalid := append([]aliInvalid(nil), a.Invalid...)
			bad := make(map[string]bool, len(invalid))
			for _, iv := range invalid {
				bad[iv.Name] = true
			}
			for _, n := range a.Names {
				if bad[n] {
					continue
				}
				if why := p.taken(n, a.ID); why != "" {
					invalid = append(invalid, aliInvalid{Name: n, Msg: why})
					bad[n] = true
				}
			}
			st := aliCheckSuccess
			if len(invalid) > 0 {
				st = aliCheckFailed
			}
			recs = append(recs, aliRecord("checked", aliCheckedRec{ID: a.ID, Status: st, Invalid: invalid}))
		case aliCreate:
			var certs []issuedCert
			if p.X509 {
				// An X.509 application finishes once its certificates are
				// made (certjobs.go); until then it stays CREATE.
				job := e.certJobFor(aliJobKey(a.ID), "aliyun", p.Key, a.Names)
				if !job.ready() || job.failed() != nil {
					continue
				}
				certs = job.certs
			}
			res := make([]aliResult, len(a.Names))
			failed := ""
			for i, n := range a.Names {
				if why := p.taken(n, a.ID); why != "" {
					// Reservations prevent this; kept so an odd replayed state
					// reports per device instead of overwriting a secret.
					res[i] = aliResult{Name: n, Err: why}
					failed = why
					continue
				}
				if p.X509 {
					res[i] = aliResult{Name: n, IotID: newIotID(), Cert: certs[i].Cert, Key: certs[i].Key, CertSN: certs[i].SN}
					continue
				}
				res[i] = aliResult{Name: n, Secret: newDeviceSecret(), IotID: newIotID()}
			}
			if p.X509 && failed != "" {
				// "For X.509 products, one failure fails the whole batch"
				// (shared/reference/aliyun.md §2, doc 69482).
				for i := range res {
					if res[i].Err == "" {
						res[i] = aliResult{Name: res[i].Name, Err: "The application of an X.509 product failed as a whole: " + failed}
					}
				}
			}
			at := time.Unix(0, a.Due).UnixMilli()
			rec := aliCreatedRec{ID: a.ID, At: at, Results: res}
			if p.X509 {
				rec.CertAt = max(at, now.UnixMilli()) + e.certDelay().Milliseconds()
			}
			recs = append(recs, aliRecord("created", rec))
			done = append(done, aliJobKey(a.ID))
		}
	}
	if len(recs) == 0 {
		return nil
	}
	if err := e.commit(recs...); err != nil {
		return err
	}
	for _, k := range done {
		e.dropCertJob(k)
	}
	return nil
}

func aliJobKey(applyID int64) string { return fmt.Sprintf("aliyun:%d", applyID) }

// certDelay is Config.CertDelay with its default.
func (e *Emulator) certDelay() time.Duration {
	switch d := e.cfg.CertDelay; {
	case d > 0:
		return d
	case d < 0:
		return 0
	default:
		return 300 * time.Millisecond
	}
}

// newDeviceSecret is a DeviceSecret as the cloud issues them: 32 random
// letters and digits (the iotkit example triple's ga7XA6KdlEeiPXQPpRbAjOZXwG8ydgSe),
// from crypto/rand, uniform over the 62 characters.
func newDeviceSecret() string { return randomAlnum(32) }

// newIotID is a device's platform-wide id; the cloud's are 20-odd
// letters and digits ending in a short numeric suffix.
func newIotID() string { return randomAlnum(20) + "000100" }

// aliEnsureProduct creates a product unless it exists; an existing one keeps
// its authentication type ("设备身份认证方式设置后，不可更改", doc 140588) and
// its node type (ALIYUN::IOT::Product NodeType: "允许更新: 否"). Called with
// e.mu held.
func (e *Emulator) aliEnsureProduct(key string, x509 bool, node int) error {
	if !productIDRe.MatchString(key) {
		return fmt.Errorf("a ProductKey is 1 to 32 letters and digits")
	}
	if p := e.ali.products[key]; p != nil {
		if p.X509 != x509 {
			return fmt.Errorf("the product exists in the state as a %s product; its authentication type cannot change "+
				"(use another ProductKey, or another state directory)", aliAuthType(p.X509))
		}
		if p.Node != node {
			return fmt.Errorf("the product exists in the state as a %s product; its node type cannot change "+
				"(use another ProductKey, or another state directory)", aliNodeName(p.Node))
		}
		return nil
	}
	return e.commit(aliRecord("product", aliProductRec{Key: key, Secret: randomAlnum(16), Created: e.now().UnixMilli(), X509: x509, Node: node}))
}

// aliAuthType is QueryProduct's AuthType: "secret" or "x509" (ALIYUN::IOT::Product
// AuthType: "secret: The device secret is used", "x509: Use the device X.509 certificate").
func aliAuthType(x509 bool) string {
	if x509 {
		return "x509"
	}
	return "secret"
}

// AliyunDevice is the emulator's own view of a device's DeviceSecret (for the
// demo's cross-check and tests; not an API).
func (e *Emulator) AliyunDevice(productKey, name string) (secret string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.aliAdvance()
	}
	p := e.ali.products[productKey]
	if p == nil {
		return "", false
	}
	d := p.devices[name]
	if d == nil {
		return "", false
	}
	return d.Secret, true
}

// AliyunDeviceCert is the emulator's own view of an X.509 device's
// certificate (PEM) and CertSN, for tests and the demo; not an API.
func (e *Emulator) AliyunDeviceCert(productKey, name string) (certPEM, certSN string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.aliAdvance()
	}
	p := e.ali.products[productKey]
	if p == nil || p.devices[name] == nil || p.devices[name].Cert == "" {
		return "", "", false
	}
	d := p.devices[name]
	return d.Cert, d.CertSN, true
}

// AliyunDeviceNames lists a product's devices, sorted.
func (e *Emulator) AliyunDeviceNames(productKey string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		e.aliAdvance()
	}
	p := e.ali.products[productKey]
	if p == nil {
		return nil
	}
	return p.sortedNames()
}
