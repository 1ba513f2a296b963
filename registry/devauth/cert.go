package devauth

// Device certificates: the MQTT login of a device of a certificate product,
// over mutual TLS.
//
//   - Tencent (doc 1105/41824 "设备基于 TCP 的 MQTT 接入", 证书认证):
//     ${productId}.iotcloud.tencentdevices.com:8883, the CONNECT as for a
//     key (client id ${productId}${deviceName}, username
//     ${clientId};${sdkappid};${connid};${expiry}); "证书认证时 PassWord 部分可
//     填写任意值", so the password is empty.
//   - Aliyun (doc 140588 "使用X.509证书认证"): x509.itls.cn-shanghai.aliyuncs.com:1883,
//     client id clientId+"|securemode=2,signmethod=..,timestamp=..|",
//     username deviceName+"&"+productKey, password "" ("物联网平台不再校验签名值").
//     A device that does not know its names yet connects with both empty (the
//     username "&") and is told them on /ext/auth/identity/response.
//
// The private key is an argument, never part of an error or a log.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"time"
)

const (
	// TencentCertPort is the certificate devices' MQTT port; TencentKeyPort
	// the key devices' (doc 1105/41824: "证书认证 ... 端口：8883", "密钥认证 ...
	// 端口：1883").
	TencentCertPort = 8883
	TencentKeyPort  = 1883
	// TencentBrokerDomain: the broker is ${productId}.iotcloud.tencentdevices.com
	// (doc 1105/41824; tencent.md §4).
	TencentBrokerDomain = "iotcloud.tencentdevices.com"
	// AliyunX509Broker is the X.509 devices' broker (doc 140588: "连接域名：
	// x509.itls.cn-shanghai.aliyuncs.com, 端口：1883").
	AliyunX509Broker = "x509.itls.cn-shanghai.aliyuncs.com:1883"
	// AliyunIdentityTopic: where the platform tells a device that connected
	// without naming itself its ProductKey and DeviceName (doc 140588).
	AliyunIdentityTopic = "/ext/auth/identity/response"
)

// CertTLSConfig is a client TLS configuration that presents the device's
// certificate and checks the broker against roots (nil = the system's) for
// serverName. An unparsable certificate or key, or a key that is not the
// certificate's, is an error that shows neither.
func CertTLSConfig(certPEM, keyPEM string, roots *x509.CertPool, serverName string) (*tls.Config, error) {
	if certPEM == "" || keyPEM == "" {
		return nil, errors.New("the device certificate or its private key is empty")
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		// crypto/tls's messages name the problem, never the bytes.
		return nil, fmt.Errorf("the device certificate and private key: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// TencentMQTTCert is a certificate device's CONNECT: client id
// ${productId}${deviceName}, username ${clientId};21010406;${connid};${expiry}
// with a random connid and an expiry an hour from now, and an empty password
// (the broker does not read it).
func TencentMQTTCert(productID, deviceName string, now time.Time) (clientID, username, password string) {
	clientID = productID + deviceName
	username = clientID + ";" + TencentSDKAppID + ";" + randomAlnum(5) + ";" + strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	return clientID, username, ""
}

// AliyunMQTTCert is an X.509 device's CONNECT once it knows its names:
// client id "<pk>.<dn>|securemode=2,signmethod=hmacsha256,timestamp=<ms>|",
// username "<dn>&<pk>", password "". With productKey and deviceName both
// empty it is the first connection's: client id
// ".|securemode=2,signmethod=hmacsha256,timestamp=<ms>|" and username "&", as
// iotkit-embedded's X.509 example sends them.
func AliyunMQTTCert(productKey, deviceName string, now time.Time) (clientID, username, password string) {
	clientID = productKey + "." + deviceName + "|securemode=2,signmethod=" + AliyunHMACSHA256 +
		",timestamp=" + strconv.FormatInt(now.UnixMilli(), 10) + "|"
	return clientID, deviceName + "&" + productKey, ""
}

// AliyunIdentify connects an X.509 device without its names and returns the
// ProductKey and DeviceName the platform pushes on
// /ext/auth/identity/response ("该Topic无需订阅"), then disconnects.
func AliyunIdentify(ctx context.Context, addr string, tlsConfig *tls.Config) (productKey, deviceName string, err error) {
	cid, user, pass := AliyunMQTTCert("", "", time.Now())
	topic, payload, err := mqttRegister(ctx, addr, tlsConfig, cid, user, pass)
	if err != nil {
		if rerr := refusal("aliyun", "MQTT identity login", err); rerr != nil {
			return "", "", rerr
		}
		return "", "", fmt.Errorf("aliyun: MQTT identity login: %w", err)
	}
	if topic != AliyunIdentityTopic {
		return "", "", fmt.Errorf("aliyun: MQTT identity login: the broker sent on %q, not %q", topic, AliyunIdentityTopic)
	}
	var v struct {
		ProductKey string `json:"productKey"`
		DeviceName string `json:"deviceName"`
	}
	if err := json.Unmarshal(payload, &v); err != nil || v.ProductKey == "" || v.DeviceName == "" {
		return "", "", fmt.Errorf("aliyun: MQTT identity login: the answer has no productKey and deviceName: %q", snippet(payload))
	}
	return v.ProductKey, v.DeviceName, nil
}

// refusal turns a broker's refusal into an *Error: a CONNACK refusing the
// login ("mqtt:<code>"), or a TLS alert by which the broker refused the
// client certificate ("tls:<alert>": 42 bad certificate, 45 certificate
// expired, 48 unknown CA, 116 certificate required, ...; RFC 8446 §6). nil
// for anything else: a transport failure, after which nothing is known.
func refusal(platform, op string, err error) error {
	var ce *connackError
	if errors.As(err, &ce) {
		return &Error{Platform: platform, Op: op, Code: "mqtt:" + strconv.Itoa(int(ce.code)), Message: ce.Error()}
	}
	// crypto/tls reports the peer's alert as a *net.OpError "remote error"
	// around its (unexported) alert type, a uint8; a QUIC-style AlertError
	// is taken too.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		if v := reflect.ValueOf(oe.Err); v.Kind() == reflect.Uint8 {
			return &Error{Platform: platform, Op: op, Code: "tls:" + strconv.FormatUint(v.Uint(), 10),
				Message: "the broker refused the TLS handshake: " + oe.Err.Error()}
		}
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return &Error{Platform: platform, Op: op, Code: "tls:" + strconv.Itoa(int(alert)), Message: "the broker refused the TLS handshake: " + alert.Error()}
	}
	return nil
}
