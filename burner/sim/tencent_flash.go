package sim

// tencentFlash is what QCloud_AT keeps in flash: the device info written by
// AT+TCDEVINFOSET and the product info written by AT+TCPRDINFOSET, each absent
// until written and wiped by AT+TCRESTORE.
type tencentFlash struct {
	Dev *tencentDev `json:"dev,omitempty"`
	Prd *tencentPrd `json:"prd,omitempty"`
	// Subs are the sub-device triples of AT+TCSUBDEVINFOSET (a gateway's).
	Subs []tencentDev `json:"subs,omitempty"`
	// Certs are the certificate and key files of AT+TCCERTADD, in the
	// order added (a cellular module's; tencent_cert.go).
	Certs []tencentCert `json:"certs,omitempty"`
}

type tencentDev struct {
	TLSMode      int    `json:"tls_mode"`
	ProductID    string `json:"product_id"`
	DeviceName   string `json:"device_name"`
	DeviceSecret string `json:"device_secret"`
	Region       string `json:"region"`
	// CertName is the certificate of TLS mode 2 (AT+TCDEVINFOSET=2,…),
	// whose key is the file of the same name ending ".key".
	CertName string `json:"cert_name,omitempty"`
}

type tencentPrd struct {
	TLSMode       int    `json:"tls_mode"`
	ProductID     string `json:"product_id"`
	ProductSecret string `json:"product_secret"`
	DeviceName    string `json:"device_name"`
	Region        string `json:"region"`
}

func (t tencentFlash) clone() tencentFlash {
	var c tencentFlash
	if t.Dev != nil {
		d := *t.Dev
		c.Dev = &d
	}
	if t.Prd != nil {
		p := *t.Prd
		c.Prd = &p
	}
	c.Subs = append([]tencentDev(nil), t.Subs...)
	c.Certs = append([]tencentCert(nil), t.Certs...)
	return c
}

// flash is the device info, with the product secret alongside; a board that
// only has product info (dynamic registration pending) shows that instead.
func (t tencentFlash) flash() Flash {
	var f Flash
	switch {
	case t.Dev != nil:
		f = Flash{TLSMode: t.Dev.TLSMode, ProductID: t.Dev.ProductID, DeviceName: t.Dev.DeviceName,
			DeviceSecret: t.Dev.DeviceSecret, Region: t.Dev.Region, CertName: t.Dev.CertName}
		if t.Dev.CertName != "" {
			if c := t.cert(t.Dev.CertName); c != nil {
				f.Cert = c.Content
			}
			if c := t.cert(keyFileOf(t.Dev.CertName)); c != nil {
				f.Key = c.Content
			}
		}
	case t.Prd != nil:
		f = Flash{TLSMode: t.Prd.TLSMode, ProductID: t.Prd.ProductID, DeviceName: t.Prd.DeviceName, Region: t.Prd.Region}
	}
	if t.Prd != nil {
		f.ProductSecret = t.Prd.ProductSecret
	}
	return f
}

func (bf boardFile) clone() boardFile {
	c := bf
	c.Tencent = bf.Tencent.clone()
	return c
}
