package emulator

// Device-side registration state, journalled under vendor "dynreg": each
// product's dynamic-registration settings (and Tencent's ProductSecret;
// Aliyun's already lives in aliProduct, where QueryProduct shows it), every
// registration attempt, and the ClientID + DeviceToken pairs of Aliyun's
// registration-free flow. A device's activation (its first MQTT login) is a
// field of the device itself, so deleting a device forgets it with the rest.

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ProductSettings are a product's device-side registration switches.
type ProductSettings struct {
	// DynamicRegistration lets devices register with the ProductSecret
	// (Tencent "dynamic registration", Aliyun "dynamic registration"/"一型一密").
	DynamicRegistration bool `json:"dr,omitempty"`
	// AutoCreate (Tencent): registering a name the product does not hold
	// creates the device, up to AutoCreateQuota devices made this way
	// (0 = no limit beyond the product's device quota). Deleting an
	// auto-created device does not give its place back.
	AutoCreate      bool `json:"ac,omitempty"`
	AutoCreateQuota int  `json:"q,omitempty"`
	// RegistrationFree (Aliyun "免预注册", authType=regnwl): a device gets a
	// ClientID + DeviceToken without its name being created first. Needs
	// DynamicRegistration too, as in the console.
	RegistrationFree bool `json:"nwl,omitempty"`
	// MaxRegistrations (Tencent) is how many times one device may register
	// before it is refused with 1012 "超过设备最大注册次数" (AT command set
	// V3.2.1 §8.3); the cloud's number is not published, so 0 = no limit.
	MaxRegistrations int `json:"mr,omitempty"`
}

// Registration modes.
const (
	ModePreRegistered    = "pre-registered"    // the name existed; the device got its secret
	ModeAutoCreate       = "auto-create"       // Tencent: the name did not exist
	ModeRegistrationFree = "registration-free" // Aliyun regnwl: ClientID + DeviceToken
)

// Registration is one dynamic-registration attempt as the emulator saw it.
type Registration struct {
	Platform   string // "tencent" or "aliyun"
	Product    string
	DeviceName string
	Mode       string // ModePreRegistered, ModeAutoCreate, ModeRegistrationFree; "" if refused before the lookup
	Transport  string // e.g. "https /device/register", "mqtt regnwl"
	Time       time.Time
	Result     string // "OK" or the vendor's error code
}

// DeviceStatus is what the emulator knows about a device's logins.
type DeviceStatus struct {
	Activated   bool      // it has logged in over MQTT at least once
	FirstOnline time.Time // zero if never
	Online      bool      // an MQTT connection of it is open now
}

type dynregState struct {
	products map[string]*drProduct // platform + "/" + product
	regs     []Registration
	tokens   map[string][]aliToken // ProductKey + "/" + DeviceName

	// Not journalled: connections do not survive a restart.
	online     map[string]int // platform/product/device → open connections
	rejections []MQTTRejection
}

type drProduct struct {
	secret string // Tencent's ProductSecret
	ProductSettings
	autoCreated int // successful auto-create registrations, rebuilt from regs
}

// aliToken is one registration-free client of a device.
type aliToken struct {
	ClientID string `json:"cid"`
	Token    string `json:"tok"`
	Created  int64  `json:"at"` // unix milliseconds
}

// Journal payloads.
type (
	drSettingsRec struct {
		Platform string `json:"pl"`
		Product  string `json:"p"`
		Secret   string `json:"s,omitempty"`
		ProductSettings
	}
	drRegRec struct {
		Platform   string `json:"pl"`
		Product    string `json:"p"`
		DeviceName string `json:"n"`
		Mode       string `json:"m,omitempty"`
		Transport  string `json:"tr"`
		Time       int64  `json:"t"` // unix nanoseconds
		Result     string `json:"r"`
	}
	drTokenRec struct {
		Product    string `json:"p"`
		DeviceName string `json:"n"`
		aliToken
	}
	drActivateRec struct {
		Platform   string `json:"pl"`
		Product    string `json:"p"`
		DeviceName string `json:"n"`
		At         int64  `json:"at"` // unix milliseconds
	}
)

// maxTokensPerDevice: "at most 5 physical devices per PK+DN" (aliyun.md §3b).
const maxTokensPerDevice = 5

func newDynregState() *dynregState {
	return &dynregState{products: map[string]*drProduct{}, tokens: map[string][]aliToken{}, online: map[string]int{}}
}

func drRecord(op string, v any) record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	return record{Vendor: "dynreg", Op: op, Data: b}
}

func drKey(parts ...string) string { return strings.Join(parts, "/") }

func (s *dynregState) product(platform, product string) *drProduct {
	p := s.products[drKey(platform, product)]
	if p == nil {
		p = &drProduct{}
		s.products[drKey(platform, product)] = p
	}
	return p
}

// drApply applies a "dynreg" record. It is an Emulator method because an
// activation changes a Tencent or Aliyun device.
func (e *Emulator) drApply(op string, data json.RawMessage) error {
	s := e.dr
	switch op {
	case "settings":
		var r drSettingsRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		p := s.product(r.Platform, r.Product)
		if r.Secret != "" {
			p.secret = r.Secret
		}
		p.ProductSettings = r.ProductSettings
	case "reg":
		var r drRegRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		s.regs = append(s.regs, Registration{Platform: r.Platform, Product: r.Product, DeviceName: r.DeviceName,
			Mode: r.Mode, Transport: r.Transport, Time: time.Unix(0, r.Time), Result: r.Result})
		if r.Mode == ModeAutoCreate && r.Result == "OK" {
			s.product(r.Platform, r.Product).autoCreated++
		}
	case "token":
		var r drTokenRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		k := drKey(r.Product, r.DeviceName)
		s.tokens[k] = append(s.tokens[k], r.aliToken)
	case "activate":
		var r drActivateRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		// A device deleted since is simply gone: nothing to activate.
		switch r.Platform {
		case "tencent":
			if p := e.tc.products[r.Product]; p != nil {
				if d := p.devices[r.DeviceName]; d != nil {
					d.Activated = r.At
				}
			}
		case "aliyun":
			if p := e.ali.products[r.Product]; p != nil {
				if d := p.devices[r.DeviceName]; d != nil {
					d.Activated = r.At
				}
			}
		default:
			return fmt.Errorf("activation of unknown platform %q", r.Platform)
		}
	default:
		return fmt.Errorf("unknown dynreg record %q", op)
	}
	return nil
}

// snapshot: settings, then tokens, then registrations in order. Activations
// travel inside the vendors' device records.
func (s *dynregState) snapshot() []record {
	var recs []record
	keys := make([]string, 0, len(s.products))
	for k := range s.products {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := s.products[k]
		platform, product, _ := strings.Cut(k, "/")
		recs = append(recs, drRecord("settings", drSettingsRec{Platform: platform, Product: product, Secret: p.secret, ProductSettings: p.ProductSettings}))
	}
	keys = keys[:0]
	for k := range s.tokens {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		product, name, _ := strings.Cut(k, "/")
		for _, t := range s.tokens[k] {
			recs = append(recs, drRecord("token", drTokenRec{Product: product, DeviceName: name, aliToken: t}))
		}
	}
	for _, r := range s.regs {
		recs = append(recs, drRecord("reg", regRec(r)))
	}
	return recs
}

func regRec(r Registration) drRegRec {
	return drRegRec{Platform: r.Platform, Product: r.Product, DeviceName: r.DeviceName, Mode: r.Mode,
		Transport: r.Transport, Time: r.Time.UnixNano(), Result: r.Result}
}

// drInit gives every product without settings its ProductSecret (Tencent) and
// the settings Config asks for. Later starts keep what is on disk, as the
// cloud keeps a product's settings. Called from New with e.mu held.
func (e *Emulator) drInit() error {
	// A certificate product's devices register with certificates
	// (encryptionType 1, clientCert/clientKey: shared/reference/tencent.md
	// §3.1), which the emulator does not issue through registration: its
	// registration stays off, and asking for it is an error.
	settings := func(platform, product string, cert bool) (ProductSettings, error) {
		s, ok := e.cfg.DynRegProducts[platform+":"+product]
		switch {
		case ok && cert && s.DynamicRegistration:
			return s, fmt.Errorf("%s product %s uses certificates: dynamic registration of certificate products is not emulated", platform, product)
		case cert:
			return ProductSettings{}, nil
		case ok:
			return s, nil
		}
		return e.cfg.DynReg, nil
	}
	var recs []record
	for _, id := range sortedKeys(e.tc.products) {
		if p := e.dr.products[drKey("tencent", id)]; p == nil || p.secret == "" {
			st, err := settings("tencent", id, e.tc.products[id].Cert)
			if err != nil {
				return err
			}
			recs = append(recs, drRecord("settings", drSettingsRec{Platform: "tencent", Product: id,
				Secret: newProductSecret(), ProductSettings: st}))
		}
	}
	for _, key := range sortedKeys(e.ali.products) {
		if e.dr.products[drKey("aliyun", key)] == nil {
			st, err := settings("aliyun", key, e.ali.products[key].X509)
			if err != nil {
				return err
			}
			recs = append(recs, drRecord("settings", drSettingsRec{Platform: "aliyun", Product: key, ProductSettings: st}))
		}
	}
	if len(recs) == 0 {
		return nil
	}
	return e.commit(recs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// newProductSecret is a Tencent ProductSecret: 24 letters and digits, the
// shape of the reference's examples (8XzjN8rfgFVGDTNTUGau4snA). Its first 16
// characters are the AES key of registration answers.
func newProductSecret() string { return randomAlnum(24) }

// ProductSecret is a product's ProductSecret ("tencent" or "aliyun"), for the
// demo, the simulated boards and tests; not an API of either cloud (Aliyun's
// QueryProduct shows it too).
func (e *Emulator) ProductSecret(platform, product string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch platform {
	case "tencent":
		if e.tc.products[product] == nil {
			return "", false
		}
		p := e.dr.products[drKey(platform, product)]
		if p == nil || p.secret == "" {
			return "", false
		}
		return p.secret, true
	case "aliyun":
		if p := e.ali.products[product]; p != nil {
			return p.Secret, true
		}
	}
	return "", false
}

func (e *Emulator) productExists(platform, product string) bool {
	switch platform {
	case "tencent":
		return e.tc.products[product] != nil
	case "aliyun":
		return e.ali.products[product] != nil
	}
	return false
}

// isCertProduct: the product authenticates its devices with certificates.
// Called with e.mu held.
func (e *Emulator) isCertProduct(platform, product string) bool {
	switch platform {
	case "tencent":
		p := e.tc.products[product]
		return p != nil && p.Cert
	case "aliyun":
		p := e.ali.products[product]
		return p != nil && p.X509
	}
	return false
}

// ProductSettings returns a product's registration settings.
func (e *Emulator) ProductSettings(platform, product string) (ProductSettings, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.productExists(platform, product) {
		return ProductSettings{}, false
	}
	if p := e.dr.products[drKey(platform, product)]; p != nil {
		return p.ProductSettings, true
	}
	return ProductSettings{}, true
}

// SetProductSettings changes a product's registration settings, persisted (the
// console's switches; tests and the demo flip them).
func (e *Emulator) SetProductSettings(platform, product string, s ProductSettings) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return fmt.Errorf("emulator: closed")
	}
	if !e.productExists(platform, product) {
		return fmt.Errorf("emulator: no %s product %q", platform, product)
	}
	if s.DynamicRegistration && e.isCertProduct(platform, product) {
		return fmt.Errorf("emulator: %s product %q uses certificates: dynamic registration of certificate products is not emulated", platform, product)
	}
	rec := drSettingsRec{Platform: platform, Product: product, ProductSettings: s}
	if p := e.dr.products[drKey(platform, product)]; p != nil {
		rec.Secret = p.secret
	}
	return e.commit(drRecord("settings", rec))
}

// Registrations lists every dynamic-registration attempt, oldest first.
func (e *Emulator) Registrations() []Registration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Registration(nil), e.dr.regs...)
}

// DeviceStatus reports a device's activation and whether it is online now.
func (e *Emulator) DeviceStatus(platform, product, name string) (DeviceStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var act int64
	switch platform {
	case "tencent":
		p := e.tc.products[product]
		if p == nil || p.devices[name] == nil {
			return DeviceStatus{}, false
		}
		act = p.devices[name].Activated
	case "aliyun":
		p := e.ali.products[product]
		if p == nil || p.devices[name] == nil {
			return DeviceStatus{}, false
		}
		act = p.devices[name].Activated
	default:
		return DeviceStatus{}, false
	}
	st := DeviceStatus{Activated: act != 0, Online: e.dr.online[drKey(platform, product, name)] > 0}
	if act != 0 {
		st.FirstOnline = time.UnixMilli(act)
	}
	return st, true
}

// recordRegistration journals one attempt. A refusal's record is best effort:
// the refusal is the answer whether or not its record reached the disk.
// Called with e.mu held.
func (e *Emulator) recordRegistration(r Registration, with ...record) error {
	r.Product, r.DeviceName = clip(r.Product), clip(r.DeviceName)
	return e.commit(append(with, drRecord("reg", regRec(r)))...)
}

// clip keeps a client-supplied name recorded from a refused request short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
