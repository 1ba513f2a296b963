package emulator

// Tencent IoT Hub state: products, their devices, and batch-creation tasks.
// Every change goes through apply, both live (after the journal write) and on
// replay, so a restart rebuilds exactly what clients were told.

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

type tencentState struct {
	products map[string]*tcProduct
	tasks    map[string]*tcTask
	pending  []*tcTask // unfinished tasks, oldest first
	topo     topology  // gateways and their bound sub-devices (tencent_gateway.go)
}

type tcProduct struct {
	ID      string
	Created int64 // unix seconds
	// Cert: a certificate product ("证书认证", DescribeProducts'
	// EncryptionType "1"); its devices have a certificate and no PSK.
	Cert bool
	// Node: tcNodeDevice, tcNodeGateway (DescribeProducts' ProductType 5
	// "普通网关产品") or tcNodeSubDevice (tencent_gateway.go).
	Node     int
	devices  map[string]*tcDevice
	reserved map[string]string // device name → id of the unfinished task creating it
}

type tcDevice struct {
	Name    string `json:"n"`
	PSK     string `json:"psk"`
	Created int64  `json:"c"` // unix seconds
	// A certificate device's certificate (PEM), and its private key (PEM)
	// until it has been handed out: DescribeDeviceClientKey gives it "仅可调
	// 用一次" once after creation, so once delivered (KeyGot, DescribeDevice's
	// CertState 1) the emulator keeps it no more.
	Cert   string `json:"cert,omitempty"`
	Key    string `json:"key,omitempty"`
	KeyGot bool   `json:"kg,omitempty"`
	// Activated is when the device first logged in over MQTT (unix
	// milliseconds; 0 = never): after it, dynamic registration is refused.
	Activated int64 `json:"act,omitempty"`
}

// tcTask is a CreateMultiDevice task. Its devices are created when it
// completes (Due); until then its names are reserved in the product.
type tcTask struct {
	ID      string     `json:"id"`
	Product string     `json:"p"`
	Names   []string   `json:"names"`
	Created int64      `json:"created"` // unix nanoseconds
	Due     int64      `json:"due"`     // unix nanoseconds
	Done    bool       `json:"done,omitempty"`
	Results []tcResult `json:"results,omitempty"`
}

// tcResult is one device of a finished task, as DescribeMultiDevices shows it.
// The cloud keeps it for the task's lifetime, even if the device is deleted.
type tcResult struct {
	Name string `json:"n"`
	PSK  string `json:"psk,omitempty"`
	// A certificate product's device: DescribeMultiDevices' DeviceCert and
	// DevicePrivateKey, which the cloud "缓存起来，其生命周期与任务生命周期一致"
	// (MultiDevicesInfo, models.go).
	Cert   string `json:"cert,omitempty"`
	Key    string `json:"key,omitempty"`
	Result uint64 `json:"r,omitempty"`
	ErrMsg string `json:"e,omitempty"`
}

// Journal payloads.
type (
	tcProductRec struct {
		ID      string `json:"id"`
		Created int64  `json:"c"`
		Cert    bool   `json:"cert,omitempty"`
		Node    int    `json:"node,omitempty"`
	}
	tcDeviceRec struct {
		Product string `json:"p"`
		tcDevice
	}
	tcDeleteRec struct {
		Product string `json:"p"`
		Name    string `json:"n"`
	}
	// tcKeyGotRec: these devices' private keys have been handed out.
	tcKeyGotRec struct {
		Product string   `json:"p"`
		Names   []string `json:"names"`
	}
	tcTaskDoneRec struct {
		ID      string     `json:"id"`
		At      int64      `json:"at"` // unix seconds: the devices' create time
		Results []tcResult `json:"results"`
	}
)

// taskRetention is how long a finished task can still be asked about: the
// cloud's TaskId "is valid for one month".
const taskRetention = 30 * 24 * time.Hour

func newTencentState() *tencentState {
	return &tencentState{products: map[string]*tcProduct{}, tasks: map[string]*tcTask{}, topo: newTopology()}
}

func tcRecord(op string, v any) record {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled
	}
	return record{Vendor: "tencent", Op: op, Data: b}
}

func (s *tencentState) apply(op string, data json.RawMessage) error {
	switch op {
	case "product":
		var r tcProductRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if s.products[r.ID] == nil {
			s.products[r.ID] = &tcProduct{ID: r.ID, Created: r.Created, Cert: r.Cert, Node: r.Node,
				devices: map[string]*tcDevice{}, reserved: map[string]string{}}
		}
	case "device":
		var r tcDeviceRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		p := s.products[r.Product]
		if p == nil {
			return fmt.Errorf("device %s of unknown product %s", r.Name, r.Product)
		}
		d := r.tcDevice
		p.devices[d.Name] = &d
	case "delete":
		var r tcDeleteRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if p := s.products[r.Product]; p != nil {
			delete(p.devices, r.Name)
			s.topo.drop(topoKey(r.Product, r.Name))
		}
	case "bind", "unbind":
		return s.applyTopo(op, data)
	case "keygot":
		var r tcKeyGotRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if p := s.products[r.Product]; p != nil {
			for _, n := range r.Names {
				if d := p.devices[n]; d != nil {
					d.KeyGot, d.Key = true, ""
				}
			}
		}
	case "task":
		var t tcTask
		if err := json.Unmarshal(data, &t); err != nil {
			return err
		}
		p := s.products[t.Product]
		if p == nil {
			return fmt.Errorf("task %s of unknown product %s", t.ID, t.Product)
		}
		s.tasks[t.ID] = &t
		if !t.Done {
			for _, n := range t.Names {
				p.reserved[n] = t.ID
			}
			s.pending = append(s.pending, &t)
		}
	case "taskdone":
		var r tcTaskDoneRec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		t := s.tasks[r.ID]
		if t == nil || t.Done {
			return fmt.Errorf("completion of unknown or finished task %s", r.ID)
		}
		p := s.products[t.Product]
		t.Done, t.Results = true, r.Results
		for _, n := range t.Names {
			if p.reserved[n] == t.ID {
				delete(p.reserved, n)
			}
		}
		for _, res := range r.Results {
			if res.Result == 0 {
				p.devices[res.Name] = &tcDevice{Name: res.Name, PSK: res.PSK, Cert: res.Cert, Key: res.Key, Created: r.At}
			}
		}
		for i, pt := range s.pending {
			if pt == t {
				s.pending = append(s.pending[:i:i], s.pending[i+1:]...)
				break
			}
		}
	default:
		return fmt.Errorf("unknown tencent record %q", op)
	}
	return nil
}

// snapshot lists the state as records that rebuild it: products, then their
// devices, then tasks ("task" records carry finished tasks' results without
// re-creating devices, so a device deleted since its task is not resurrected).
// Finished tasks past their retention are dropped.
func (s *tencentState) snapshot(now time.Time) []record {
	var recs []record
	ids := make([]string, 0, len(s.products))
	for id := range s.products {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := s.products[id]
		recs = append(recs, tcRecord("product", tcProductRec{ID: p.ID, Created: p.Created, Cert: p.Cert, Node: p.Node}))
		for _, n := range p.sortedNames() {
			recs = append(recs, tcRecord("device", tcDeviceRec{Product: p.ID, tcDevice: *p.devices[n]}))
		}
	}
	for _, t := range s.topo.records() { // after every device: a binding names both ends
		recs = append(recs, tcRecord("bind", t))
	}
	tasks := make([]*tcTask, 0, len(s.tasks))
	for _, t := range s.tasks {
		if t.Done && now.Sub(time.Unix(0, t.Created)) > taskRetention {
			continue
		}
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].Created < tasks[j].Created })
	for _, t := range tasks {
		recs = append(recs, tcRecord("task", t))
	}
	return recs
}

func (p *tcProduct) sortedNames() []string {
	names := make([]string, 0, len(p.devices))
	for n := range p.devices {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// status is the task's TaskStatus: 0 not started (the first quarter of its
// delay), 1 running, 2 completed.
func (t *tcTask) status(now time.Time) uint64 {
	switch {
	case t.Done:
		return 2
	case now.UnixNano() < t.Created+(t.Due-t.Created)/4:
		return 0
	default:
		return 1
	}
}
