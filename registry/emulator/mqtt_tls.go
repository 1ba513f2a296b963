package emulator

// The broker's TLS listener: mutual TLS for the devices of certificate
// products. The TLS handshake requires a client certificate that chains to
// the emulator's CA (an unknown, expired or missing one fails the
// handshake, before any MQTT); the CONNECT is then checked against the
// device the certificate was issued to:
//
//   - Tencent (doc 1105/41824 "设备基于 TCP 的 MQTT 接入", 证书认证): port
//     8883, client id ${productId}${deviceName}, username
//     ${productId}${deviceName};${sdkappid};${connid};${expiry} as for keys,
//     and "采用证书认证的设备接入时不会对填写的 PassWord 部分进行验证": the
//     password is not read. The certificate must be the one issued to the
//     client id's device.
//   - Aliyun (doc 140588 "使用X.509证书认证", x509.itls.cn-shanghai.aliyuncs.com:1883):
//     client id "<clientId>|securemode=2,signmethod=..,timestamp=..|",
//     username "<deviceName>&<productKey>", password "" ("物联网平台不再校验签名
//     值"). The platform knows the device by its certificate: a device that
//     connects without naming itself (ProductKey and DeviceName empty: the
//     username "&", as iotkit-embedded's X.509 example log shows) is told who
//     it is on /ext/auth/identity/response, {"productKey","deviceName"}, and
//     stays connected; one that names itself must name the certificate's
//     device.
//
// A certificate that verifies but is another device's is refused with
// CONNACK 4 "bad username or password" (the credential presented is not
// this device's); a device or product that is not a certificate one with 5
// "not authorized". Which codes the clouds send here is not published.
// [the codes: NOT FROM A SOURCE]

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// AliyunIdentityTopic is where the platform tells a device that logged in
// with its X.509 certificate, without naming itself, its ProductKey and
// DeviceName (doc 140588: "设备端从Topic /ext/auth/identity/response中获取云端
// 下发的ProductKey和DeviceName。该Topic无需订阅").
const AliyunIdentityTopic = "/ext/auth/identity/response"

// StartMQTTS starts the broker's TLS listener on addr ("" = 127.0.0.1 on a
// free port), for the devices of certificate products, and returns the
// address it listens on. Its server certificate is signed by the emulator's
// CA (CACertPEM) for localhost, 127.0.0.1, ::1 and addr's host. Close stops it.
func (e *Emulator) StartMQTTS(addr string) (listenAddr string, err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("emulator: MQTT TLS address %q: %w", addr, err)
	}
	ca, err := e.authority()
	if err != nil {
		return "", err
	}
	serverCert, err := ca.serverCert(host, e.now())
	if err != nil {
		return "", fmt.Errorf("emulator: the broker's server certificate: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
		MinVersion:   tls.VersionTLS12, // "支持 TLSV1，TLSV1.1，TLSV1.2" (doc 1105/41824); the emulator asks the newest of them
		Time:         e.now,            // certificates are checked on the emulator's clock, the one that issued them
	}
	return e.startBroker(&e.tlsBroker, "MQTT TLS listener", true, &tlsListener{id: "iotburn-tls", address: addr, cfg: cfg, log: e.log})
}

// MQTTSAddr is the TLS listener's address ("" when it is not running).
func (e *Emulator) MQTTSAddr() string {
	e.mqttMu.Lock()
	defer e.mqttMu.Unlock()
	if e.tlsBroker == nil {
		return ""
	}
	return e.tlsBroker.addr
}

// peerCertificate is the verified client certificate of a TLS connection
// (nil on any other). By OnConnect the handshake is over: the CONNECT has
// been read through it.
func peerCertificate(cl *mqtt.Client) *x509.Certificate {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		return nil
	}
	return st.PeerCertificates[0]
}

// mqttAuthenticateCert is the TLS listener's CONNECT check; the vendor is
// told by the client id's shape, as on the plain listener.
func (e *Emulator) mqttAuthenticateCert(cid, user string, leaf *x509.Certificate) (*mqttSession, *mqttReject) {
	platform := "tencent"
	if strings.Contains(cid, "|") {
		platform = "aliyun"
	}
	if leaf == nil {
		return nil, rejectf(platform, "", "", mqttNotAuthorized, "no client certificate")
	}
	if platform == "aliyun" {
		return e.mqttAliyunCert(cid, user, leaf)
	}
	return e.mqttTencentCert(cid, user, leaf)
}

func (e *Emulator) mqttTencentCert(cid, user string, leaf *x509.Certificate) (*mqttSession, *mqttReject) {
	f := strings.Split(user, ";")
	if len(f) != 4 {
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the username is not ${clientId};${sdkappid};${connid};${expiry}")
	}
	if f[0] != cid {
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the username's client id %q is not the MQTT client id %q", clip(f[0]), clip(cid))
	}
	expiry, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return nil, rejectf("tencent", "", "", mqttBadCredentials, "the username's expiry %q is not unix seconds", clip(f[3]))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, rejectf("tencent", "", "", mqttNotAuthorized, "the emulator is shut down")
	}
	if err := e.tcAdvance(); err != nil {
		return nil, rejectf("tencent", "", "", mqttNotAuthorized, "persisting state: %v", err)
	}
	prod, d := e.tcFindClient(cid)
	if d == nil {
		return nil, rejectf("tencent", "", "", mqttNotAuthorized, "no device has the client id %q (${productId}${deviceName})", clip(cid))
	}
	if !prod.Cert {
		return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized,
			"product %s uses key authentication: its devices log in with a key on the plain port", prod.ID)
	}
	if now := e.now().Unix(); expiry < now {
		return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized, "the credentials expired at %d (now %d)", expiry, now)
	}
	if pemFingerprint(d.Cert) != certFingerprint(leaf.Raw) {
		return nil, rejectf("tencent", prod.ID, d.Name, mqttBadCredentials,
			"the client certificate (CN %q) is not the one issued to device %s", clip(leaf.Subject.CommonName), d.Name)
	}
	if d.Activated == 0 {
		if err := e.commit(drRecord("activate", drActivateRec{Platform: "tencent", Product: prod.ID, DeviceName: d.Name, At: e.now().UnixMilli()})); err != nil {
			return nil, rejectf("tencent", prod.ID, d.Name, mqttNotAuthorized, "persisting the activation: %v", err)
		}
	}
	return &mqttSession{platform: "tencent", product: prod.ID, device: d.Name}, nil
}

func (e *Emulator) mqttAliyunCert(cid, user string, leaf *x509.Certificate) (*mqttSession, *mqttReject) {
	_, rest, _ := strings.Cut(cid, "|")
	if !strings.HasSuffix(rest, "|") {
		return nil, rejectf("aliyun", "", "", mqttBadCredentials, "the client id is not <clientId>|key=value,...|")
	}
	params := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "|"), ",") {
		k, v, _ := strings.Cut(kv, "=")
		params[k] = v
	}
	dn, pk, ok := strings.Cut(user, "&")
	if !ok {
		return nil, rejectf("aliyun", "", "", mqttBadCredentials, "the username is not <deviceName>&<productKey> (or \"&\")")
	}
	// "securemode: ... Set the value to 2 because the TLS direct connection
	// mode is used"; "signmethod: ... Valid values: hmacmd5, hmacsha1, and
	// hmacsha256" (doc 140588).
	if params["securemode"] != "2" {
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "securemode must be 2 for an X.509 login (got %q)", clip(params["securemode"]))
	}
	if aliSignHash(params["signmethod"]) == nil {
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "signmethod must be hmacsha256, hmacsha1 or hmacmd5 (got %q)", clip(params["signmethod"]))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "the emulator is shut down")
	}
	if err := e.aliAdvance(); err != nil {
		return nil, rejectf("aliyun", pk, dn, mqttNotAuthorized, "persisting state: %v", err)
	}
	owner, ok := e.ali.byCert[certFingerprint(leaf.Raw)]
	if !ok {
		// Verified by the CA, but no Aliyun device holds it (a deleted
		// device's, or a Tencent device's).
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials, "the client certificate belongs to no device of this platform")
	}
	prod := e.ali.products[owner[0]]
	d := prod.devices[owner[1]]
	identify := pk == "" && dn == ""
	if !identify && (pk != prod.Key || dn != d.Name) {
		return nil, rejectf("aliyun", pk, dn, mqttBadCredentials,
			"the client certificate is not the one issued to device %s of product %s", clip(dn), clip(pk))
	}
	if d.Activated == 0 {
		if err := e.commit(drRecord("activate", drActivateRec{Platform: "aliyun", Product: prod.Key, DeviceName: d.Name, At: e.now().UnixMilli()})); err != nil {
			return nil, rejectf("aliyun", prod.Key, d.Name, mqttNotAuthorized, "persisting the activation: %v", err)
		}
	}
	s := &mqttSession{platform: "aliyun", product: prod.Key, device: d.Name}
	if identify {
		s.topic, s.keep = AliyunIdentityTopic, true
		s.payload, _ = json.Marshal(map[string]string{"productKey": prod.Key, "deviceName": d.Name})
	}
	return s, nil
}

// tlsListener is the TLS listener: mochi's TCP listener with TLS, but with
// the handshake done before the connection is handed to the broker, so that
// a refused certificate ends cleanly. A server that fails the handshake
// sends its alert and would close the socket at once; the client, whose
// TLS 1.3 handshake ended when it sent its certificate, has by then sent
// its CONNECT, and closing a socket with unread data resets the connection,
// which can reach the client before the alert does (it would see "connection
// reset", not why). So a failed handshake's socket is drained until the
// client hangs up, for at most tlsDrain.
type tlsListener struct {
	id, address string
	cfg         *tls.Config
	log         *slog.Logger

	mu  sync.Mutex
	ln  net.Listener
	end atomic.Bool
}

const (
	tlsHandshakeTimeout = 30 * time.Second
	tlsDrain            = 2 * time.Second
)

func (l *tlsListener) ID() string       { return l.id }
func (l *tlsListener) Protocol() string { return "tcp+tls" }

func (l *tlsListener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

func (l *tlsListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return nil
}

func (l *tlsListener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		if l.end.Load() {
			conn.Close()
			return
		}
		go l.handshake(conn, establish)
	}
}

func (l *tlsListener) handshake(raw net.Conn, establish listeners.EstablishFn) {
	tc := tls.Server(raw, l.cfg)
	raw.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		// Never a key here: crypto/tls names the problem (no certificate,
		// unknown authority, expired), not the bytes.
		l.log.Info("mqtt", "listener", "tls", "remote", raw.RemoteAddr().String(), "handshake", err.Error())
		raw.SetReadDeadline(time.Now().Add(tlsDrain))
		io.Copy(io.Discard, raw)
		raw.Close()
		return
	}
	raw.SetDeadline(time.Time{})
	if err := establish(l.id, tc); err != nil && !errors.Is(err, io.EOF) {
		l.log.Debug("mqtt", "listener", "tls", "err", err.Error())
	}
}

func (l *tlsListener) Close(closeClients listeners.CloseFn) {
	if l.end.CompareAndSwap(false, true) {
		closeClients(l.id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
	}
}
