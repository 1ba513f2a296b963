package sim

// aliyunFlash is what the Alibaba IoT AT firmware keeps in its KV store
// (KV_KEY_PK/DN/DS/PS, reference/aliyun.md §6) once AT+IDMAU= has run. The
// firmware does not tell "never set" from "set to empty", and neither does
// this: the zero value is a board with nothing stored. A value type with
// strings only, so boardFile's shallow copy is already a deep one.
type aliyunFlash struct {
	ProductKey    string `json:"product_key"`
	DeviceName    string `json:"device_name"`
	DeviceSecret  string `json:"device_secret"`
	ProductSecret string `json:"product_secret"`
	// What AT+IDMREG=1 (registration-free) obtained; a new AT+IDMAU= write
	// clears them, as they belong to the identity they were issued for.
	ClientID    string `json:"client_id,omitempty"`
	DeviceToken string `json:"device_token,omitempty"`
}

// flash is the kind-neutral view: ProductID is the ProductKey.
func (a aliyunFlash) flash() Flash {
	return Flash{ProductID: a.ProductKey, DeviceName: a.DeviceName, DeviceSecret: a.DeviceSecret, ProductSecret: a.ProductSecret,
		ClientID: a.ClientID, DeviceToken: a.DeviceToken}
}
