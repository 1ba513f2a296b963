package provision

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/devauth"
)

// ErrLoginRefused: the broker refused the board's credential (CONNACK bad
// user name or password, not authorized): evidence against the credential,
// unlike a broker that cannot be reached.
var ErrLoginRefused = errors.New("broker refused the credential")

// MQTTLogin returns a Login for VerifyOptions: it connects to the platform's
// MQTT broker with the board's own credential, built by the vendor's scheme
// (registry/devauth), and returns the broker's reason when it refuses.
// broker "" is the vendor's public broker for the product (Tencent
// PRODUCTID.iotcloud.tencentdevices.com:1883 with the key-auth password;
// Aliyun PRODUCTKEY.iot-as-mqtt.REGION.aliyuncs.com:443 over TLS); a
// host:port (the emulator's, `iotburn sim cloud` prints it) is plain TCP.
func MQTTLogin(broker string) func(ctx context.Context, c registry.Credential) error {
	return func(ctx context.Context, c registry.Credential) error {
		var clientID, user, pass string
		addr, useTLS := broker, false
		switch c.Platform {
		case registry.Tencent:
			var err error
			clientID, user, pass, err = devauth.TencentMQTT(c.ProductID, c.DeviceName, c.DeviceSecret, time.Now())
			if err != nil {
				return err
			}
			if addr == "" {
				addr = c.ProductID + ".iotcloud.tencentdevices.com:1883"
			}
		case registry.Aliyun:
			clientID, user, pass = devauth.AliyunMQTT(c.ProductID, c.DeviceName, c.DeviceSecret, time.Now())
			if addr == "" {
				region := c.Region
				if region == "" {
					region = "cn-shanghai"
				}
				addr, useTLS = fmt.Sprintf("%s.iot-as-mqtt.%s.aliyuncs.com:443", c.ProductID, region), true
			}
		default:
			return fmt.Errorf("mqtt: no login scheme for platform %q", c.Platform)
		}
		return pahoConnect(ctx, addr, useTLS, clientID, user, pass)
	}
}

// pahoConnect makes one MQTT CONNECT with paho and disconnects at once.
func pahoConnect(ctx context.Context, addr string, useTLS bool, clientID, user, pass string) error {
	scheme := "tcp://"
	o := mqtt.NewClientOptions().SetClientID(clientID).SetUsername(user).SetPassword(pass).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(10 * time.Second).SetProtocolVersion(4)
	if useTLS {
		scheme = "ssl://"
		host, _, _ := net.SplitHostPort(addr)
		o.SetTLSConfig(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12})
	}
	o.AddBroker(scheme + addr)
	client := mqtt.NewClient(o)
	tok := client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return fmt.Errorf("mqtt %s: %w (%w)", addr, ctx.Err(), registry.ErrUnreachable)
	}
	if err := tok.Error(); err != nil {
		// The broker's CONNACK codes, as paho exports them: a refusal of the
		// credential is the board's (ErrLoginRefused); anything else (no
		// connection, the server unavailable) is the network's.
		switch {
		case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
			return fmt.Errorf("broker %s refused the login: bad user name or password (the board's credential is not the platform's): %w", addr, ErrLoginRefused)
		case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedIDRejected):
			return fmt.Errorf("broker %s refused the login: %v (device unknown, disabled or expired credential): %w", addr, err, ErrLoginRefused)
		}
		return fmt.Errorf("broker %s: %v: %w", addr, err, registry.ErrUnreachable)
	}
	client.Disconnect(100)
	return nil
}

// MQTTTokenLogin returns a TokenLogin for VerifyOptions: an Aliyun
// registration-free board's ClientID + DeviceToken login.
func MQTTTokenLogin(broker string) func(ctx context.Context, c registry.Credential, clientID, token string) error {
	return func(ctx context.Context, c registry.Credential, clientID, token string) error {
		addr, useTLS := broker, false
		if addr == "" {
			region := c.Region
			if region == "" {
				region = "cn-shanghai"
			}
			addr, useTLS = fmt.Sprintf("%s.iot-as-mqtt.%s.aliyuncs.com:443", c.ProductID, region), true
		}
		cid, user, pass := devauth.AliyunMQTTToken(c.ProductID, c.DeviceName, clientID, token)
		return pahoConnect(ctx, addr, useTLS, cid, user, pass)
	}
}

// CertLoginOption configures MQTTCertLogin.
type CertLoginOption func(*certLogin)

type certLogin struct {
	roots *x509.CertPool
	err   error
}

// WithBrokerCA makes MQTTCertLogin trust the CA certificates in caPEM for the
// broker (the emulator's <state>/ca.pem) instead of the system's roots.
func WithBrokerCA(caPEM []byte) CertLoginOption {
	return func(l *certLogin) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			l.err = errors.New("mqtt: the broker CA holds no PEM certificate")
			return
		}
		l.roots = pool
	}
}

// MQTTCertLogin returns a Login for a certificate credential (c.DeviceCert,
// c.DevicePrivateKey): it logs in to the broker over mutual TLS with the
// board's own certificate, as the vendor's device SDK does (registry/devauth),
// and returns the broker's reason when it refuses. broker "" is the vendor's
// public certificate broker (Tencent PRODUCTID.iotcloud.tencentdevices.com:8883,
// doc 1105/41824; Aliyun x509.itls.cn-shanghai.aliyuncs.com:1883, doc 140588);
// a host:port is that broker (the emulator's --mqtts-listen), checked against
// WithBrokerCA's CA, else the system's roots.
//
// A refusal, by CONNACK or by a TLS alert against the certificate, wraps
// ErrLoginRefused; a broker that cannot be reached, or whose own certificate
// is not trusted, registry.ErrUnreachable. The private key is never in an
// error.
func MQTTCertLogin(broker string, opts ...CertLoginOption) func(ctx context.Context, c registry.Credential) error {
	var cfg certLogin
	for _, o := range opts {
		o(&cfg)
	}
	return func(ctx context.Context, c registry.Credential) error {
		if cfg.err != nil {
			return cfg.err
		}
		if c.DeviceCert == "" || c.DevicePrivateKey == "" {
			return fmt.Errorf("mqtt: %s/%s has no device certificate and key: a certificate login needs both", c.ProductID, c.DeviceName)
		}
		addr := broker
		var clientID, user, pass string
		switch c.Platform {
		case registry.Tencent:
			clientID, user, pass = devauth.TencentMQTTCert(c.ProductID, c.DeviceName, time.Now())
			if addr == "" {
				addr = fmt.Sprintf("%s.%s:%d", c.ProductID, devauth.TencentBrokerDomain, devauth.TencentCertPort)
			}
		case registry.Aliyun:
			clientID, user, pass = devauth.AliyunMQTTCert(c.ProductID, c.DeviceName, time.Now())
			if addr == "" {
				addr = devauth.AliyunX509Broker
			}
		default:
			return fmt.Errorf("mqtt: no certificate login scheme for platform %q", c.Platform)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("mqtt: broker %q: %w", addr, err)
		}
		tlsConfig, err := devauth.CertTLSConfig(c.DeviceCert, c.DevicePrivateKey, cfg.roots, host)
		if err != nil {
			return fmt.Errorf("mqtt: %s/%s: %w", c.ProductID, c.DeviceName, err)
		}
		err = devauth.MQTTLogin(ctx, c.Platform, addr, tlsConfig, clientID, user, pass)
		if err == nil {
			return nil
		}
		if de, ok := devauth.Refused(err); ok {
			return fmt.Errorf("broker %s refused the certificate login of %s/%s: %s (%s): %w",
				addr, c.ProductID, c.DeviceName, de.Code, de.Message, ErrLoginRefused)
		}
		var unknownCA x509.UnknownAuthorityError
		var badHost x509.HostnameError
		if errors.As(err, &unknownCA) || errors.As(err, &badHost) {
			return fmt.Errorf("broker %s: its certificate is not trusted (%v): give the broker's CA: %w", addr, err, registry.ErrUnreachable)
		}
		return fmt.Errorf("broker %s: %v: %w", addr, err, registry.ErrUnreachable)
	}
}

// EitherLogin is a Login for a product of either kind: a certificate
// credential logs in with cert (mutual TLS), any other with key.
func EitherLogin(key, cert func(ctx context.Context, c registry.Credential) error) func(ctx context.Context, c registry.Credential) error {
	return func(ctx context.Context, c registry.Credential) error {
		if c.IsCert() {
			return cert(ctx, c)
		}
		return key(ctx, c)
	}
}
