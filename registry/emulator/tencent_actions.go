package emulator

// The iotcloud 2018-06-14 actions. Field names and types follow the SDK's
// models.go; error codes are the SDK's errors.go names. Each handler runs
// with e.mu held, after tcAdvance.

import (
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

const (
	tcMaxBatch = 100 // CreateMultiDevice: "单次最多创建 100 个设备"
	// DescribeMultiDevices documents no page-size range; a task holds at most
	// 100 devices, so 100 is one whole task and the emulator's maximum.
	tcMaxMultiPage = 100
	// DescribeDevices / DescribeProducts: "分页的大小，数值范围 10-250".
	tcMinPage, tcMaxPage = 10, 250
)

// tcErrPendingTasks is errors.go's LIMITEXCEEDED_PENGINGORPROCESSINGTASKSEXCEEDLIMIT,
// spelled as the SDK spells it ("Penging").
const tcErrPendingTasks = "LimitExceeded.PengingOrProcessingTasksExceedLimit"

func (e *Emulator) tcProduct(p params, key string) (*tcProduct, *apiError) {
	id, aerr := p.str(key)
	if aerr != nil {
		return nil, aerr
	}
	prod := e.tc.products[id]
	if prod == nil {
		return nil, errf("ResourceNotFound.ProductNotExist", "The product `%s` does not exist.", id)
	}
	return prod, nil
}

func tcCheckName(name string) *apiError {
	if !tcDeviceNameRe.MatchString(name) {
		return errf("InvalidParameterValue", "The device name `%s` is invalid: names must match [a-zA-Z0-9:_-]{1,48}.", name)
	}
	return nil
}

// tcQuota refuses n more devices beyond the product's quota; names reserved by
// unfinished tasks count, since they will become devices.
func (e *Emulator) tcQuota(prod *tcProduct, n int) *apiError {
	if have := len(prod.devices) + len(prod.reserved); have+n > e.cfg.Quota {
		return errf("LimitExceeded.DeviceExceedLimit",
			"The product `%s` would exceed its quota of %d devices (it has %d, %d requested).", prod.ID, e.cfg.Quota, have, n)
	}
	return nil
}

// tcNameTaken refuses a name that exists or that an unfinished task is creating.
func tcNameTaken(prod *tcProduct, name string) *apiError {
	if _, ok := prod.devices[name]; ok {
		return errf("InvalidParameterValue.DeviceAlreadyExist", "The device `%s` already exists in product `%s`.", name, prod.ID)
	}
	if task, ok := prod.reserved[name]; ok {
		return errf("InvalidParameterValue.DeviceAlreadyExist", "The device `%s` is being created by task `%s`.", name, task)
	}
	return nil
}

func (e *Emulator) tcCreateMultiDevice(p params) (any, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	names, aerr := p.strs("DeviceNames")
	if aerr != nil {
		return nil, aerr
	}
	if len(names) == 0 || len(names) > tcMaxBatch {
		return nil, errf("InvalidParameterValue", "DeviceNames holds %d names; one call creates 1 to %d.", len(names), tcMaxBatch)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if aerr := tcCheckName(n); aerr != nil {
			return nil, aerr
		}
		if seen[n] {
			return nil, errf("InvalidParameterValue.DeviceAlreadyExist", "DeviceNames lists `%s` more than once.", n)
		}
		seen[n] = true
		if aerr := tcNameTaken(prod, n); aerr != nil {
			return nil, aerr
		}
	}
	if aerr := e.tcQuota(prod, len(names)); aerr != nil {
		return nil, aerr
	}
	if max := e.cfg.MaxPendingTasks; max > 0 && len(e.tc.pending) >= max {
		// The account's unfinished tasks, every product's (see Config).
		return nil, errf(tcErrPendingTasks,
			"There are %d unfinished batch tasks, the most allowed: wait for one to finish.", len(e.tc.pending))
	}
	now := e.now()
	t := tcTask{ID: newTaskID(), Product: prod.ID, Names: names,
		Created: now.UnixNano(), Due: now.Add(e.taskDelay(len(names))).UnixNano()}
	if err := e.commit(tcRecord("task", t)); err != nil {
		return nil, errf("InternalError", "Persisting the task: %v.", err)
	}
	return map[string]any{"TaskId": t.ID}, nil
}

// taskDelay is how long a task of n devices takes.
func (e *Emulator) taskDelay(n int) time.Duration {
	switch d := e.cfg.TaskDelay; {
	case d > 0:
		return d
	case d < 0:
		return 0
	default:
		return 300*time.Millisecond + time.Duration(n)*2*time.Millisecond
	}
}

func (e *Emulator) tcTask(p params) (*tcTask, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	id, aerr := p.str("TaskId")
	if aerr != nil {
		return nil, aerr
	}
	t := e.tc.tasks[id]
	if t == nil {
		return nil, errf("ResourceNotFound.CreateMultiDeviceTaskNotExist", "The task `%s` does not exist.", id)
	}
	if t.Product != prod.ID {
		return nil, errf("InvalidParameterValue.TaskIDNotMatch", "The task `%s` does not belong to product `%s`.", id, prod.ID)
	}
	return t, nil
}

func (e *Emulator) tcDescribeMultiDevTask(p params) (any, *apiError) {
	t, aerr := e.tcTask(p)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"TaskId": t.ID, "TaskStatus": t.status(e.now())}, nil
}

type tcMultiDevicesInfo struct {
	DeviceName       string
	DevicePsk        string
	DeviceCert       string
	DevicePrivateKey string
	Result           uint64
	ErrMsg           string
}

// tcDescribeMultiDevices refuses an unfinished task with
// UnauthorizedOperation.CreateMultiDeviceTaskNotFinished (errors.go: "批量创建
// 设备任务未完成"), rather than answering with an empty or partial list: a
// client that forgot to wait must not mistake "not yet" for "no devices".
func (e *Emulator) tcDescribeMultiDevices(p params) (any, *apiError) {
	t, aerr := e.tcTask(p)
	if aerr != nil {
		return nil, aerr
	}
	if !t.Done {
		return nil, errf("UnauthorizedOperation.CreateMultiDeviceTaskNotFinished",
			"The task `%s` has not finished (TaskStatus %d): wait for TaskStatus 2.", t.ID, t.status(e.now()))
	}
	offset, limit, aerr := page(p, 10, 1, tcMaxMultiPage)
	if aerr != nil {
		return nil, aerr
	}
	infos := []tcMultiDevicesInfo{}
	var delivered []string
	prod := e.tc.products[t.Product]
	for _, r := range window(t.Results, offset, limit) {
		infos = append(infos, tcMultiDevicesInfo{DeviceName: r.Name, DevicePsk: r.PSK, DeviceCert: r.Cert,
			DevicePrivateKey: r.Key, Result: r.Result, ErrMsg: r.ErrMsg})
		if d := prod.devices[r.Name]; r.Key != "" && d != nil && !d.KeyGot {
			delivered = append(delivered, r.Name)
		}
	}
	// A private key this answer hands out counts as fetched (CertState 1):
	// DescribeDeviceClientKey will not give it again, though this task keeps
	// answering with it for its lifetime. [NOT FROM A SOURCE: the harsher
	// reading of "仅可调用一次" next to "其生命周期与任务生命周期一致"]
	if len(delivered) > 0 {
		if err := e.commit(tcRecord("keygot", tcKeyGotRec{Product: prod.ID, Names: delivered})); err != nil {
			return nil, errf("InternalError", "Persisting the delivery: %v.", err)
		}
	}
	return map[string]any{"TaskId": t.ID, "DevicesInfo": infos, "TotalDevNum": len(t.Results)}, nil
}

// tcDescribeDeviceClientKey hands out a certificate device's private key
// once ("刚生成或者重置设备后仅可调用一次", client.go), answering ClientKey
// (DescribeDeviceClientKeyResponse, models.go). Its refusals are the ones the
// SDK lists for it (later tencentcloud-sdk-go iotcloud/v20180614/client.go:
// UnsupportedOperation.ClientCertAlreadyGot, UnsupportedOperation.WrongProductAuthType,
// ResourceNotFound.DeviceNotExist, ResourceNotFound.ProductNotExist).
func (e *Emulator) tcDescribeDeviceClientKey(p params) (any, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := p.str("DeviceName")
	if aerr != nil {
		return nil, aerr
	}
	if !prod.Cert {
		return nil, errf("UnsupportedOperation.WrongProductAuthType",
			"Product `%s` uses key authentication: its devices have no private key to describe.", prod.ID)
	}
	d := prod.devices[name]
	if d == nil {
		return nil, errf("ResourceNotFound.DeviceNotExist", "The device `%s` does not exist in product `%s`.", name, prod.ID)
	}
	if d.KeyGot || d.Key == "" {
		return nil, errf("UnsupportedOperation.ClientCertAlreadyGot",
			"The private key of device `%s` has already been fetched; it can be fetched once after creation.", name)
	}
	key := d.Key
	if err := e.commit(tcRecord("keygot", tcKeyGotRec{Product: prod.ID, Names: []string{name}})); err != nil {
		return nil, errf("InternalError", "Persisting the delivery: %v.", err)
	}
	return map[string]any{"ClientKey": key}, nil
}

// page reads Offset and Limit; an absent Limit is def.
func page(p params, def, lo, hi uint64) (offset, limit uint64, aerr *apiError) {
	if offset, aerr = p.uint("Offset", 0); aerr != nil {
		return 0, 0, aerr
	}
	if limit, aerr = p.uint("Limit", def); aerr != nil {
		return 0, 0, aerr
	}
	if limit < lo || limit > hi {
		return 0, 0, errf("InvalidParameterValue", "Limit must be %d to %d (got %d).", lo, hi, limit)
	}
	return offset, limit, nil
}

func window[T any](list []T, offset, limit uint64) []T {
	if offset >= uint64(len(list)) {
		return nil
	}
	return list[offset:min(uint64(len(list)), offset+limit)]
}

// tcCreateDevice is CreateDevice as the action table knows it; handleTencent
// calls tcCreateDeviceWith directly, with a certificate made outside the lock.
func (e *Emulator) tcCreateDevice(p params) (any, *apiError) { return e.tcCreateDeviceWith(p, nil) }

// tcCreateDeviceWith creates one device. For a certificate product the
// answer carries DeviceCert and DevicePrivateKey ("腾讯云后台不保存，请妥善保管",
// CreateDeviceResponse in models.go) and no DevicePsk ("采用对称加密时返回"):
// the key is not kept, so the device counts as having had its key
// (CertState 1), and DescribeDeviceClientKey will not give it again. That
// this answer uses up DescribeDeviceClientKey's one read is the emulator's
// reading of the two sentences, the harsher one. [NOT FROM A SOURCE]
func (e *Emulator) tcCreateDeviceWith(p params, pre *issuedCert) (any, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := p.str("DeviceName")
	if aerr != nil {
		return nil, aerr
	}
	if aerr := tcCheckName(name); aerr != nil {
		return nil, aerr
	}
	psk, defined, aerr := p.optStr("DefinedPsk")
	if aerr != nil {
		return nil, aerr
	}
	switch {
	case defined && prod.Cert:
		// A PSK for a device that authenticates with a certificate: refused
		// rather than stored unused. [NOT FROM A SOURCE]
		return nil, errf("InvalidParameterValue", "DefinedPsk is for key-authenticated products; product `%s` uses certificates.", prod.ID)
	case defined:
		if _, err := base64.StdEncoding.DecodeString(psk); err != nil || psk == "" {
			return nil, errf("InvalidParameterValue.DefinedPskNotBase64", "DefinedPsk must be a base64 string.")
		}
	case !prod.Cert:
		psk = newPSK()
	}
	if aerr := tcNameTaken(prod, name); aerr != nil {
		return nil, aerr
	}
	if aerr := e.tcQuota(prod, 1); aerr != nil {
		return nil, aerr
	}
	d := tcDevice{Name: name, PSK: psk, Created: e.now().Unix()}
	if prod.Cert {
		if pre == nil {
			return nil, errf("InternalError", "No certificate was issued for device `%s`.", name)
		}
		d.Cert, d.KeyGot = pre.Cert, true
	}
	if err := e.commit(tcRecord("device", tcDeviceRec{Product: prod.ID, tcDevice: d})); err != nil {
		return nil, errf("InternalError", "Persisting the device: %v.", err)
	}
	if prod.Cert {
		return map[string]any{"DeviceName": name, "DevicePsk": "", "DeviceCert": pre.Cert, "DevicePrivateKey": pre.Key}, nil
	}
	return map[string]any{"DeviceName": name, "DevicePsk": psk, "DeviceCert": "", "DevicePrivateKey": ""}, nil
}

// tcDeviceInfo is DescribeDevice's answer and a DescribeDevices item (the
// fields both share in models.go): never online, enabled, key never fetched.
type tcDeviceInfo struct {
	DeviceName         string
	Online             uint64
	LoginTime          uint64
	Version            string
	LastUpdateTime     int64
	DeviceCert         string
	DevicePsk          string
	Tags               []struct{}
	DeviceType         uint64
	Imei               string
	Isp                uint64
	ConnIP             uint64
	NbiotDeviceID      string
	LoraDevEui         string
	LoraMoteType       uint64
	LogLevel           uint64
	FirstOnlineTime    uint64
	LastOfflineTime    uint64
	CreateTime         int64
	CertState          uint64
	EnableState        uint64
	Labels             []struct{}
	ClientIP           string
	FirmwareUpdateTime uint64
}

// deviceInfo: a certificate device shows its DeviceCert ("设备证书") and no
// PSK; CertState is "设备证书获取状态，0 未获取过设备密钥, 1 已获取过设备密钥"
// (DescribeDeviceResponse, models.go).
func deviceInfo(d *tcDevice) tcDeviceInfo {
	i := tcDeviceInfo{DeviceName: d.Name, DevicePsk: d.PSK, DeviceCert: d.Cert, LastUpdateTime: d.Created, CreateTime: d.Created,
		EnableState: 1, Tags: []struct{}{}, Labels: []struct{}{}}
	if d.KeyGot {
		i.CertState = 1
	}
	return i
}

// tcDescribeDevice: in 2018-06-14 the product key is "ProductID", capital D.
func (e *Emulator) tcDescribeDevice(p params) (any, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductID")
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := p.str("DeviceName")
	if aerr != nil {
		return nil, aerr
	}
	d := prod.devices[name]
	if d == nil {
		return nil, errf("ResourceNotFound.DeviceNotExist", "The device `%s` does not exist in product `%s`.", name, prod.ID)
	}
	i := deviceInfo(d)
	if e.dr.online[drKey("tencent", prod.ID, d.Name)] > 0 {
		i.Online = 1
	}
	return i, nil
}

// tcDescribeDevices pages a product's devices in name order (stable across
// pages). DeviceName filters by substring; EnableState 0 matches nothing,
// since every emulated device is enabled.
func (e *Emulator) tcDescribeDevices(p params) (any, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	offset, limit, aerr := page(p, tcMinPage, tcMinPage, tcMaxPage)
	if aerr != nil {
		return nil, aerr
	}
	filter, _, aerr := p.optStr("DeviceName")
	if aerr != nil {
		return nil, aerr
	}
	names := prod.sortedNames()
	if filter != "" {
		names = slices.DeleteFunc(names, func(n string) bool { return !strings.Contains(n, filter) })
	}
	if p.has("EnableState") {
		st, aerr := p.uint("EnableState", 0)
		if aerr != nil {
			return nil, aerr
		}
		if st != 1 {
			names = nil
		}
	}
	devs := []tcDeviceInfo{}
	for _, n := range window(names, offset, limit) {
		devs = append(devs, deviceInfo(prod.devices[n]))
	}
	return map[string]any{"TotalCount": len(names), "Devices": devs}, nil
}

func (e *Emulator) tcDeleteDevice(p params) (any, *apiError) {
	prod, aerr := e.tcProduct(p, "ProductId")
	if aerr != nil {
		return nil, aerr
	}
	name, aerr := p.str("DeviceName")
	if aerr != nil {
		return nil, aerr
	}
	if prod.devices[name] == nil {
		return nil, errf("ResourceNotFound.DeviceNotExist", "The device `%s` does not exist in product `%s`.", name, prod.ID)
	}
	if aerr := e.tcDeletable(prod.ID, name); aerr != nil {
		return nil, aerr
	}
	if err := e.commit(tcRecord("delete", tcDeleteRec{Product: prod.ID, Name: name})); err != nil {
		return nil, errf("InternalError", "Persisting the deletion: %v.", err)
	}
	return map[string]any{}, nil
}

type tcProductInfo struct {
	ProductId         string
	ProductName       string
	ProductMetadata   struct{ CreationDate int64 }
	ProductProperties struct {
		ProductDescription string
		// EncryptionType: "加密类型，1表示证书认证，2表示签名认证" (ProductProperties, models.go).
		EncryptionType string
		Region         string
		ProductType    uint64
		Format         string
		Platform       string
		// RegisterType: 0 dynamic registration off, 1 on for created
		// devices, 2 on and unknown names are created (auto-create).
		RegisterType  uint64
		ProductSecret string `json:",omitempty"`
		RegisterLimit uint64 // auto-created devices allowed
	}
}

func (e *Emulator) tcDescribeProducts(p params) (any, *apiError) {
	offset, limit, aerr := page(p, tcMinPage, tcMinPage, tcMaxPage)
	if aerr != nil {
		return nil, aerr
	}
	ids := make([]string, 0, len(e.tc.products))
	for id := range e.tc.products {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []tcProductInfo{}
	for _, id := range window(ids, offset, limit) {
		var i tcProductInfo
		i.ProductId, i.ProductName = id, id
		i.ProductMetadata.CreationDate = e.tc.products[id].Created
		i.ProductProperties.EncryptionType = "2"
		if e.tc.products[id].Cert {
			i.ProductProperties.EncryptionType = "1"
		}
		i.ProductProperties.Region = "gz"
		i.ProductProperties.ProductType = tcProductType(e.tc.products[id].Node)
		i.ProductProperties.Format = "json"
		i.ProductProperties.Platform = "0"
		if dp := e.dr.products[drKey("tencent", id)]; dp != nil {
			i.ProductProperties.ProductSecret = dp.secret
			switch {
			case dp.DynamicRegistration && dp.AutoCreate:
				i.ProductProperties.RegisterType = 2
			case dp.DynamicRegistration:
				i.ProductProperties.RegisterType = 1
			}
			i.ProductProperties.RegisterLimit = uint64(dp.AutoCreateQuota)
		}
		out = append(out, i)
	}
	return map[string]any{"TotalCount": len(ids), "Products": out}, nil
}
