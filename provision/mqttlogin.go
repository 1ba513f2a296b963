package provision

import (
	"context"
	"crypto/tls"
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
