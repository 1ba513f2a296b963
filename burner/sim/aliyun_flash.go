package sim

// aliyunFlash is what the Alibaba IDMAU AT firmware keeps in its KV store:
// the four values AT+IDMAU= writes through HAL_SetProductKey/DeviceName/
// DeviceSecret/ProductSecret (reference/aliyun.md §6), and the strings
// AT+MODEL= and AT+DEVINFO= store (nvram "model", KV "devInfo"). The
// firmware does not tell "never set" from "set to empty", and neither does
// this: the zero value is a board with nothing stored. A value type with
// strings only, so boardFile's shallow copy is already a deep one.
type aliyunFlash struct {
	ProductKey    string `json:"product_key"`
	DeviceName    string `json:"device_name"`
	DeviceSecret  string `json:"device_secret"`
	ProductSecret string `json:"product_secret"`
	Model         string `json:"model,omitempty"`
	DevInfo       string `json:"dev_info,omitempty"`
}

// flash is the kind-neutral view: ProductID is the ProductKey.
func (a aliyunFlash) flash() Flash {
	return Flash{ProductID: a.ProductKey, DeviceName: a.DeviceName, DeviceSecret: a.DeviceSecret, ProductSecret: a.ProductSecret}
}
