package emulator

// The Iot 2018-01-20 actions. Parameter and field names follow the official
// Go SDK (services/iot/*.go, struct tags); error codes are the IoT Platform's
// list (help doc 87387). Each handler runs with e.mu held, after aliAdvance.

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	aliMaxNames = 10000 // names per application (BatchCheckDeviceNames, BatchRegisterDevice Count)
	// aliMaxX509Names: "X.509 products allow 1,000" names a call
	// (shared/reference/aliyun.md §2 Limits, doc 69482). Beyond it the
	// emulator refuses, as it does beyond 10,000, rather than drop names.
	aliMaxX509Names = 1000
	aliMaxPage      = 50 // QueryPageByApplyId / QueryDevice PageSize
	aliDefPage      = 10
)

var aliDeviceNameRe = regexp.MustCompile(`^[A-Za-z0-9_@.:-]{4,32}$`)

// aliPhase is how long a check or a creation of n names takes. TaskDelay > 0
// is used as is, < 0 is instant. The default is much faster than the cloud
// (which "takes some minutes") so the demo stays lively, but long enough that
// a client must really poll.
func (e *Emulator) aliPhase(n int, create bool) time.Duration {
	switch d := e.cfg.TaskDelay; {
	case d > 0:
		return d
	case d < 0:
		return 0
	case create:
		return 300*time.Millisecond + time.Duration(n)*100*time.Microsecond
	default:
		return 200*time.Millisecond + time.Duration(n)*20*time.Microsecond
	}
}

func (e *Emulator) aliProduct(p rpcParams) (*aliProduct, *apiError) {
	key, ok := p["ProductKey"]
	if !ok || key == "" {
		return nil, errf("iot.prod.NullProductKey", "ProductKey cannot be empty.")
	}
	prod := e.ali.products[key]
	if prod == nil {
		return nil, errf("iot.prod.NotExistedProduct", "The specified product %s does not exist.", key)
	}
	return prod, nil
}

func aliCheckName(name string) *apiError {
	if name == "" {
		return errf("iot.device.NullDeviceName", "Device name cannot be empty.")
	}
	if !aliDeviceNameRe.MatchString(name) {
		return errf("iot.device.InvalidFormattedDeviceName",
			"The format of the device name is invalid: 4 to 32 characters of letters, digits and -_@.: are allowed.")
	}
	return nil
}

// aliNicknameOK: 4 to 64 characters of letters, digits, '_' and Chinese or
// Japanese characters, which count as 2.
func aliNicknameOK(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := 0
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_'):
			n++
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
			n += 2
		default:
			return false
		}
	}
	return n >= 4 && n <= 64
}

// aliQuota refuses n more devices beyond the product's quota; names reserved
// by applications in CREATE count, since they will become devices.
func (e *Emulator) aliQuota(prod *aliProduct, n int) *apiError {
	if have := len(prod.devices) + len(prod.reserved); have+n > e.cfg.Quota {
		return errf("iot.device.DeviceCountExceeded",
			"Number of devices requested exceeds the maximum limit: product %s holds %d of %d, %d more requested.", prod.Key, have, e.cfg.Quota, n)
	}
	return nil
}

// indexed collects "<prefix>N<suffix>" parameters (N = 1, 2, ...) in N order,
// the SDK's flattening of a RepeatList.
func indexed(p rpcParams, prefix, suffix string) ([]string, *apiError) {
	type item struct {
		n int
		v string
	}
	var items []item
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, suffix)
		if !ok || strings.Contains(num, ".") {
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			return nil, errf("iot.system.IllegalRequest", "The parameter %q has an invalid index.", k)
		}
		items = append(items, item{n, v})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out, nil
}

func (e *Emulator) aliNewApplyID() int64 {
	return e.ali.nextApply
}

// aliBatchCheckDeviceNames: names come as DeviceNameList.N.DeviceName (with
// optional DeviceNameList.N.DeviceNickname) or DeviceName.N; DeviceNameList
// wins if both are sent. The answer carries the ApplyId and the names that
// fail the format rules or repeat; the application's status then tells the
// full verdict, including names that already exist.
func (e *Emulator) aliBatchCheckDeviceNames(p rpcParams) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	names, aerr := indexed(p, "DeviceNameList.", ".DeviceName")
	if aerr != nil {
		return nil, aerr
	}
	nicks, aerr := indexed(p, "DeviceNameList.", ".DeviceNickname")
	if aerr != nil {
		return nil, aerr
	}
	if len(names) == 0 {
		if names, aerr = indexed(p, "DeviceName.", ""); aerr != nil {
			return nil, aerr
		}
		nicks = nil
	}
	if len(names) == 0 {
		return nil, errf("iot.device.NoneDeviceNameElement", "The device name list cannot be empty.")
	}
	if max := prod.maxNames(); len(names) > max {
		return nil, errf("iot.device.DeviceCountExceeded",
			"Number of devices requested exceeds the maximum limit: one application takes at most %d names, got %d.", max, len(names))
	}
	var (
		invalid, repeated, badNicks = []string{}, []string{}, []string{}
		details                     = []map[string]string{}
		inv                         []aliInvalid
		seen                        = make(map[string]bool, len(names))
	)
	for _, n := range names {
		switch {
		case aliCheckName(n) != nil:
			invalid = append(invalid, n)
			msg := "The format of the device name is invalid."
			details = append(details, map[string]string{"DeviceName": n, "ErrorMsg": msg})
			inv = append(inv, aliInvalid{Name: n, Msg: msg})
		case seen[n]:
			repeated = append(repeated, n)
			inv = append(inv, aliInvalid{Name: n, Msg: "The device name is repeated in the application."})
		}
		seen[n] = true
	}
	for _, nick := range nicks {
		if nick != "" && !aliNicknameOK(nick) {
			badNicks = append(badNicks, nick)
		}
	}
	now := e.now()
	a := aliApp{ID: e.aliNewApplyID(), Product: prod.Key, Names: names, Status: aliCheck, Invalid: inv,
		Created: now.UnixNano(), Due: now.Add(e.aliPhase(len(names), false)).UnixNano()}
	if len(badNicks) > 0 {
		a.Status, a.Due = aliCheckFailed, a.Created
		for _, nick := range badNicks {
			a.Invalid = append(a.Invalid, aliInvalid{Name: nick, Msg: "The format of the nickname is invalid."})
		}
	}
	if err := e.commit(aliRecord("apply", a)); err != nil {
		return nil, errf("iot.system.SystemException", "Persisting the application: %v.", err)
	}
	return map[string]any{"Data": map[string]any{
		"ApplyId":                   a.ID,
		"InvalidDeviceNameList":     map[string]any{"InvalidDeviceName": invalid},
		"InvalidDeviceNicknameList": map[string]any{"InvalidDeviceNickname": badNicks},
		// "RepeatDevieNameList" (sic) is the SDK's key for this list.
		"RepeatedDeviceNameList": map[string]any{"RepeatDevieNameList": repeated},
		"InvalidDetailList":      details,
	}}, nil
}

func (e *Emulator) aliApp(p rpcParams, prod *aliProduct) (*aliApp, *apiError) {
	raw, ok := p["ApplyId"]
	if !ok || raw == "" {
		return nil, errf("iot.device.NullApplyId", "ApplyId cannot be empty.")
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		return nil, errf("iot.device.InvalidFormattedApplyId", "The ApplyId %q is incorrect.", raw)
	}
	a := e.ali.apps[id]
	if a == nil || (prod != nil && a.Product != prod.Key) {
		return nil, errf("iot.device.DeviceApplyIsNotFound", "The ApplyId %d is not found.", id)
	}
	return a, nil
}

// aliBatchRegisterDeviceWithApplyID starts creating a checked application.
// An application still in CHECK, one that failed its check, and one already
// registered are refused (iot.device.IncorrentDeviceApplyInfo, the cloud's
// spelling): a client must poll for CHECK_SUCCESS first, and must not count
// on a repeated registration being accepted.
func (e *Emulator) aliBatchRegisterDeviceWithApplyID(p rpcParams) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	a, aerr := e.aliApp(p, prod)
	if aerr != nil {
		return nil, aerr
	}
	if a.Status != aliCheckSuccess {
		return nil, errf("iot.device.IncorrentDeviceApplyInfo",
			"The device application information is not correct: application %d is %s, registration needs %s.", a.ID, a.Status, aliCheckSuccess)
	}
	for _, n := range a.Names {
		if why := prod.taken(n, a.ID); why != "" {
			return nil, errf("iot.device.AlreadyExistedDeviceName", "%s (%s)", strings.TrimSuffix(why, "."), n)
		}
	}
	if aerr := e.aliQuota(prod, len(a.Names)); aerr != nil {
		return nil, aerr
	}
	due := e.now().Add(e.aliPhase(len(a.Names), true)).UnixNano()
	if err := e.commit(aliRecord("register", aliRegisterRec{ID: a.ID, Due: due})); err != nil {
		return nil, errf("iot.system.SystemException", "Persisting the registration: %v.", err)
	}
	return map[string]any{"Data": map[string]any{"ApplyId": a.ID}}, nil
}

// aliBatchRegisterDevice creates Count devices with random names.
func (e *Emulator) aliBatchRegisterDevice(p rpcParams) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	count, err := strconv.Atoi(p["Count"])
	if err != nil || count < 1 || count > prod.maxNames() {
		return nil, errf("iot.device.DeviceCountExceeded", "Count must be 1 to %d (got %q).", prod.maxNames(), p["Count"])
	}
	if aerr := e.aliQuota(prod, count); aerr != nil {
		return nil, aerr
	}
	names := make([]string, 0, count)
	seen := make(map[string]bool, count)
	for len(names) < count {
		n := randomAlnum(20)
		if seen[n] || prod.taken(n, 0) != "" {
			continue
		}
		seen[n] = true
		names = append(names, n)
	}
	now := e.now()
	a := aliApp{ID: e.aliNewApplyID(), Product: prod.Key, Names: names, Status: aliCreate,
		Created: now.UnixNano(), Due: now.Add(e.aliPhase(count, true)).UnixNano()}
	if err := e.commit(aliRecord("apply", a)); err != nil {
		return nil, errf("iot.system.SystemException", "Persisting the application: %v.", err)
	}
	return map[string]any{"Data": map[string]any{"ApplyId": a.ID}}, nil
}

// aliQueryBatchRegisterDeviceStatus: on the _FAILED statuses, InvalidList and
// InvalidDetailList say which names failed and ValidList the others; on the
// others the lists are empty. The detail list's inner key is lower-case
// "invalidDetailList", as the SDK's struct tag has it.
func (e *Emulator) aliQueryBatchRegisterDeviceStatus(p rpcParams) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	a, aerr := e.aliApp(p, prod)
	if aerr != nil {
		return nil, aerr
	}
	valid, invalid, details := []string{}, []string{}, []map[string]string{}
	var failed []aliInvalid
	switch a.Status {
	case aliCheckFailed:
		failed = a.Invalid
	case aliCreateFailed:
		for _, r := range a.Results {
			if r.Err != "" {
				failed = append(failed, aliInvalid{Name: r.Name, Msg: r.Err})
			}
		}
	}
	if len(failed) > 0 {
		bad := make(map[string]bool, len(failed))
		for _, f := range failed {
			bad[f.Name] = true
			invalid = append(invalid, f.Name)
			details = append(details, map[string]string{"DeviceName": f.Name, "ErrorMsg": f.Msg})
		}
		for _, n := range a.Names {
			if !bad[n] {
				valid = append(valid, n)
			}
		}
	}
	return map[string]any{"Data": map[string]any{
		"Status":            a.Status,
		"ValidList":         map[string]any{"Name": valid},
		"InvalidList":       map[string]any{"Name": invalid},
		"InvalidDetailList": map[string]any{"invalidDetailList": details},
	}}, nil
}

// aliPage reads PageSize (1..max, default 10) and CurrentPage (≥ 1, default 1).
func aliPage(p rpcParams, maxSize int) (page, size int, aerr *apiError) {
	page, size = 1, aliDefPage
	if v, ok := p["PageSize"]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxSize {
			return 0, 0, errf("iot.common.InvalidPageParams", "The specified page size %q is invalid: 1 to %d.", v, maxSize)
		}
		size = n
	}
	if v, ok := p["CurrentPage"]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, errf("iot.common.InvalidPageParams", "The specified page number %q is invalid.", v)
		}
		page = n
	}
	return page, size, nil
}

func pageWindow[T any](list []T, page, size int) []T {
	start := (page - 1) * size
	if page-1 > len(list)/size || start >= len(list) {
		return nil
	}
	return list[start:min(len(list), start+size)]
}

// aliQueryPageByApplyID pages the devices of a finished application. Its
// list is at the top level of the answer (Page, PageSize, PageCount, Total,
// ApplyDeviceList), not under Data; it takes no ProductKey. An application
// still creating is refused (iot.device.CreateDeviceTaskIsRunning) rather
// than answered with a partial list a client could take for the whole.
func (e *Emulator) aliQueryPageByApplyID(p rpcParams) (map[string]any, *apiError) {
	a, aerr := e.aliApp(p, nil)
	if aerr != nil {
		return nil, aerr
	}
	page, size, aerr := aliPage(p, aliMaxPage)
	if aerr != nil {
		return nil, aerr
	}
	switch a.Status {
	case aliCreate:
		return nil, errf("iot.device.CreateDeviceTaskIsRunning", "The device creation task of application %d is still in progress.", a.ID)
	case aliCheck, aliCheckSuccess, aliCheckFailed:
		return nil, errf("iot.device.IncorrentDeviceApplyInfo", "Application %d is %s: it has no devices.", a.ID, a.Status)
	}
	created := make([]aliResult, 0, len(a.Results))
	for _, r := range a.Results {
		if r.Err == "" {
			created = append(created, r)
		}
	}
	infos := []map[string]string{}
	for _, r := range pageWindow(created, page, size) {
		infos = append(infos, map[string]string{"DeviceId": r.IotID, "DeviceName": r.Name, "DeviceSecret": r.Secret, "IotId": r.IotID})
	}
	return map[string]any{
		"Page": page, "PageSize": size, "PageCount": (len(created) + size - 1) / size, "Total": len(created),
		"ApplyDeviceList": map[string]any{"ApplyDeviceInfo": infos},
	}, nil
}

// maxNames is how many names one application of the product takes.
func (p *aliProduct) maxNames() int {
	if p.X509 {
		return aliMaxX509Names
	}
	return aliMaxNames
}

// aliRegisterDevice is RegisterDevice as the action table knows it;
// handleAliyun calls aliRegisterDeviceWith directly.
func (e *Emulator) aliRegisterDevice(p rpcParams) (map[string]any, *apiError) {
	return e.aliRegisterDeviceWith(p, nil)
}

// aliRegisterDeviceWith creates one device; without DeviceName the cloud
// picks one. An X.509 product's device gets the certificate made before the
// lock was taken (pre), and no DeviceSecret: certificate and shared secret
// are exclusive ("X.509证书的设备认证方式与常用的共享密钥互斥", doc 163769), so
// the answer's DeviceSecret is empty. [the empty field: NOT FROM A SOURCE]
func (e *Emulator) aliRegisterDeviceWith(p rpcParams, pre *issuedCert) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	name := p["DeviceName"]
	if name == "" {
		for name = randomAlnum(20); prod.taken(name, 0) != ""; name = randomAlnum(20) {
		}
	}
	if aerr := aliCheckName(name); aerr != nil {
		return nil, aerr
	}
	nick := p["Nickname"]
	if nick != "" && !aliNicknameOK(nick) {
		return nil, errf("iot.system.IllegalRequest", "The nickname is invalid: 4 to 64 characters of letters, digits and _.")
	}
	if why := prod.taken(name, 0); why != "" {
		return nil, errf("iot.device.AlreadyExistedDeviceName", "%s (%s)", strings.TrimSuffix(why, "."), name)
	}
	if aerr := e.aliQuota(prod, 1); aerr != nil {
		return nil, aerr
	}
	d := aliDevice{Name: name, IotID: newIotID(), Created: e.now().UnixMilli()}
	if prod.X509 {
		if pre == nil {
			return nil, errf("iot.system.SystemException", "No certificate was issued for device %s.", name)
		}
		d.Cert, d.Key, d.CertSN = pre.Cert, pre.Key, pre.SN
		d.CertAt = d.Created + e.certDelay().Milliseconds()
	} else {
		d.Secret = newDeviceSecret()
	}
	if err := e.commit(aliRecord("device", aliDeviceRec{Product: prod.Key, aliDevice: d})); err != nil {
		return nil, errf("iot.system.SystemException", "Persisting the device: %v.", err)
	}
	return map[string]any{"Data": map[string]any{"IotId": d.IotID, "ProductKey": prod.Key, "DeviceName": d.Name,
		"DeviceSecret": d.Secret, "Nickname": nick}}, nil
}

// aliDevice finds a device by IotId, or by ProductKey and DeviceName.
func (e *Emulator) aliDevice(p rpcParams) (*aliProduct, *aliDevice, *apiError) {
	if iot := p["IotId"]; iot != "" {
		ref, ok := e.ali.byIotID[iot]
		if !ok {
			return nil, nil, errf("iot.device.NotExistedDevice", "The specified device does not exist.")
		}
		prod := e.ali.products[ref[0]]
		return prod, prod.devices[ref[1]], nil
	}
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, nil, aerr
	}
	name := p["DeviceName"]
	if name == "" {
		return nil, nil, errf("iot.device.NullDeviceName", "Device name cannot be empty.")
	}
	d := prod.devices[name]
	if d == nil {
		return nil, nil, errf("iot.device.NotExistedDevice", "The specified device %s does not exist in product %s.", name, prod.Key)
	}
	return prod, d, nil
}

// Beijing time, which the Gmt* fields are written in (the Utc* fields are UTC).
var chinaTime = time.FixedZone("CST", 8*3600)

func (e *Emulator) aliQueryDeviceDetail(p rpcParams) (map[string]any, *apiError) {
	prod, d, aerr := e.aliDevice(p)
	if aerr != nil {
		return nil, aerr
	}
	created := time.UnixMilli(d.Created)
	return map[string]any{"Data": map[string]any{
		"IotId": d.IotID, "ProductKey": prod.Key, "ProductName": prod.Key, "DeviceName": d.Name, "DeviceSecret": d.Secret,
		"FirmwareVersion": "", "GmtCreate": created.In(chinaTime).Format("2006-01-02 15:04:05"),
		"UtcCreate": created.UTC().Format("2006-01-02T15:04:05.000Z"),
		"Status":    e.aliStatus(prod, d), "NodeType": aliNodeType(prod.Node), "Region": "cn-shanghai", "Owner": true, "Nickname": "",
	}}, nil
}

// aliStatus is a device's Status as QueryDeviceDetail and QueryDevice show
// it: ONLINE while an MQTT connection of it is open, OFFLINE once it has
// logged in, UNACTIVE before (the API's values ONLINE, OFFLINE, UNACTIVE,
// DISABLE; the emulator does not disable devices). Called with e.mu held.
func (e *Emulator) aliStatus(prod *aliProduct, d *aliDevice) string {
	switch {
	case e.dr.online[drKey("aliyun", prod.Key, d.Name)] > 0:
		return "ONLINE"
	case d.Activated != 0:
		return "OFFLINE"
	}
	return "UNACTIVE"
}

// aliQueryDevice pages a product's devices in name order.
func (e *Emulator) aliQueryDevice(p rpcParams) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	page, size, aerr := aliPage(p, aliMaxPage)
	if aerr != nil {
		return nil, aerr
	}
	names := prod.sortedNames()
	infos := []map[string]string{}
	for _, n := range pageWindow(names, page, size) {
		d := prod.devices[n]
		created := time.UnixMilli(d.Created).UTC()
		infos = append(infos, map[string]string{
			"DeviceName": d.Name, "DeviceSecret": d.Secret, "IotId": d.IotID, "DeviceId": d.IotID, "ProductKey": prod.Key,
			"DeviceStatus": e.aliStatus(prod, d), "DeviceType": "", "Nickname": "",
			"GmtCreate": created.Format(time.RFC1123), "GmtModified": created.Format(time.RFC1123),
			"UtcCreate": created.Format("2006-01-02T15:04:05.000Z"), "UtcModified": created.Format("2006-01-02T15:04:05.000Z"),
		})
	}
	return map[string]any{
		"Page": page, "PageSize": size, "PageCount": (len(names) + size - 1) / size, "Total": len(names),
		"Data": map[string]any{"DeviceInfo": infos},
	}, nil
}

func (e *Emulator) aliDeleteDevice(p rpcParams) (map[string]any, *apiError) {
	prod, d, aerr := e.aliDevice(p)
	if aerr != nil {
		return nil, aerr
	}
	if err := e.commit(aliRecord("delete", aliDeleteRec{Product: prod.Key, Name: d.Name})); err != nil {
		return nil, errf("iot.system.SystemException", "Persisting the deletion: %v.", err)
	}
	return nil, nil
}

func (e *Emulator) aliQueryProduct(p rpcParams) (map[string]any, *apiError) {
	prod, aerr := e.aliProduct(p)
	if aerr != nil {
		return nil, aerr
	}
	return map[string]any{"Data": map[string]any{
		"ProductKey": prod.Key, "ProductName": prod.Key, "ProductSecret": prod.Secret, "GmtCreate": prod.Created,
		"DeviceCount": len(prod.devices), "NodeType": aliNodeType(prod.Node), "ProtocolType": aliProtocolType(prod.Node),
		"DataFormat": 1, "AuthType": aliAuthType(prod.X509),
		"ProductStatus": "DEVELOPMENT_STATUS", "NetType": 3, "ValidateType": 1, "Owner": true, "Id2": false,
		"Description": fmt.Sprintf("iotburn emulator product %s", prod.Key),
	}}, nil
}

// aliQueryDeviceCert answers an X.509 device's certificate (doc api-omdh29,
// QueryDeviceCertResponse in services/iot): DeviceCertInfo{Status,
// Certificate, PrivateKey, CertSN}, Status "0:生成中 1:生成失败 2:生成成功".
// Until the certificate is ready the answer is Status 0 with the other
// fields empty, so a client must poll. The console downloads a device's
// certificate at any time (doc 140588), so the key is answered on every
// call. Certificate and PrivateKey are PEM: the doc's example value is
// masked, and PEM is what devices are given (doc 140588's g_cli_crt).
// A device of a secret product is refused with iot.system.IllegalRequest
// ("仅支持...认证方式为X.509证书的设备"; the code is the emulator's). [the code
// and the empty fields at Status 0: NOT FROM A SOURCE]
func (e *Emulator) aliQueryDeviceCert(p rpcParams) (map[string]any, *apiError) {
	prod, d, aerr := e.aliDevice(p)
	if aerr != nil {
		return nil, aerr
	}
	if !prod.X509 {
		return nil, errf("iot.system.IllegalRequest",
			"QueryDeviceCert is for devices of X.509 products; product %s uses device secrets.", prod.Key)
	}
	info := map[string]any{"Status": 0, "Certificate": "", "PrivateKey": "", "CertSN": ""}
	if e.now().UnixMilli() >= d.CertAt {
		info = map[string]any{"Status": 2, "Certificate": d.Cert, "PrivateKey": d.Key, "CertSN": d.CertSN}
	}
	return map[string]any{"DeviceCertInfo": info}, nil
}

// aliCertURLHost is where the emulator's CertUrl points: a name under the
// reserved .invalid domain (RFC 2606), which resolves nowhere. The batch
// download's format is not published (doc 140723 gives only "该批次设备的X.509
// 证书下载链接"), so the emulator serves none: clients get each certificate
// with QueryDeviceCert.
const aliCertURLHost = "x509-batch-download.iotburn-emulator.invalid"

// aliQueryCertUrlByApplyID answers QueryCertUrlByApplyId (doc 140723,
// QueryCertUrlByApplyIdResponse in services/iot): CertUrl, valid 30 days
// ("CertUrl地址有效期为30天", doc 140588). An application of a secret product,
// or one not created, is refused (codes as QueryPageByApplyId's; the secret
// product's iot.system.IllegalRequest is the emulator's). [NOT FROM A SOURCE]
func (e *Emulator) aliQueryCertUrlByApplyID(p rpcParams) (map[string]any, *apiError) {
	a, aerr := e.aliApp(p, nil)
	if aerr != nil {
		return nil, aerr
	}
	if prod := e.ali.products[a.Product]; prod == nil || !prod.X509 {
		return nil, errf("iot.system.IllegalRequest", "Application %d is of a product that uses device secrets: it has no certificates.", a.ID)
	}
	switch a.Status {
	case aliCreate:
		return nil, errf("iot.device.CreateDeviceTaskIsRunning", "The device creation task of application %d is still in progress.", a.ID)
	case aliCheck, aliCheckSuccess, aliCheckFailed:
		return nil, errf("iot.device.IncorrentDeviceApplyInfo", "Application %d is %s: it has no devices.", a.ID, a.Status)
	}
	if e.now().Sub(time.Unix(0, a.Created)) > taskRetention {
		return nil, errf("iot.device.DeviceApplyIsNotFound", "The certificate download of application %d has expired (30 days).", a.ID)
	}
	return map[string]any{"CertUrl": fmt.Sprintf("https://%s/%d.zip", aliCertURLHost, a.ID)}, nil
}
