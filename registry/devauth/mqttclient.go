package devauth

// A minimal MQTT 3.1.1 client for the one exchange an MQTT-based registration
// needs: CONNECT, CONNACK, then the single PUBLISH the broker pushes before it
// closes the connection. A full client library would add reconnect logic and
// goroutines that only get in the way of "one answer or an error".

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// connackError is a CONNACK that refused the connection.
type connackError struct{ code byte }

func (e *connackError) Error() string {
	switch e.code {
	case 1:
		return "connection refused: unacceptable protocol version"
	case 2:
		return "connection refused: identifier rejected"
	case 3:
		return "connection refused: server unavailable"
	case 4:
		return "connection refused: bad username or password"
	case 5:
		return "connection refused: not authorized"
	}
	return fmt.Sprintf("connection refused: return code %d", e.code)
}

const maxPacket = 64 << 10

// MQTTLogin proves a set of CONNECT credentials: it connects to the broker at
// addr (tlsConfig nil = plain TCP), reads the CONNACK and disconnects. A
// refusal is an *Error with Code "mqtt:<return code>" (4 bad username or
// password, 5 not authorized) or, when the broker refused a client
// certificate in the TLS handshake, "tls:<alert>"; other errors are
// transport failures.
func MQTTLogin(ctx context.Context, platform, addr string, tlsConfig *tls.Config, clientID, username, password string) error {
	conn, _, err := mqttConnect(ctx, addr, tlsConfig, clientID, username, password)
	if err != nil {
		if rerr := refusal(platform, "MQTT login", err); rerr != nil {
			return rerr
		}
		return fmt.Errorf("%s: MQTT login: %w", platform, err)
	}
	conn.Write([]byte{0xe0, 0}) // DISCONNECT
	conn.Close()
	return nil
}

// mqttConnect dials, sends CONNECT and reads an accepting CONNACK. The
// context's deadline (30 s if it has none) bounds the connection's life.
func mqttConnect(ctx context.Context, addr string, tlsConfig *tls.Config, clientID, username, password string) (net.Conn, *bufio.Reader, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	d := net.Dialer{Deadline: deadline}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if tlsConfig != nil {
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, err
		}
		conn = tc
	}
	conn.SetDeadline(deadline)
	if _, err := conn.Write(connectPacket(clientID, username, password, 60)); err != nil {
		conn.Close()
		return nil, nil, err
	}
	r := bufio.NewReader(conn)
	typ, body, err := readPacket(r)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("reading CONNACK: %w", ctxErr(ctx, err))
	}
	if typ>>4 != 2 || len(body) != 2 {
		conn.Close()
		return nil, nil, fmt.Errorf("expected CONNACK, got packet type %d", typ>>4)
	}
	if body[1] != 0 {
		conn.Close()
		return nil, nil, &connackError{code: body[1]}
	}
	return conn, r, nil
}

// mqttRegister connects, and returns the topic and payload of the first
// PUBLISH the broker sends.
func mqttRegister(ctx context.Context, addr string, tlsConfig *tls.Config, clientID, username, password string) (topic string, payload []byte, err error) {
	conn, r, err := mqttConnect(ctx, addr, tlsConfig, clientID, username, password)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close()
	// Cancelling the context interrupts a blocked read.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		typ, body, err := readPacket(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", nil, errors.New("the broker closed the connection without an answer")
			}
			return "", nil, fmt.Errorf("waiting for the answer: %w", ctxErr(ctx, err))
		}
		if typ>>4 != 3 { // not a PUBLISH: ignore (e.g. a PINGRESP)
			continue
		}
		qos := typ >> 1 & 3
		if len(body) < 2 {
			return "", nil, errors.New("malformed PUBLISH")
		}
		n := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+n {
			return "", nil, errors.New("malformed PUBLISH")
		}
		topic, rest := string(body[2:2+n]), body[2+n:]
		if qos > 0 {
			if len(rest) < 2 {
				return "", nil, errors.New("malformed PUBLISH")
			}
			// Acknowledge so a QoS 1 broker does not resend; then we are done.
			conn.Write([]byte{0x40, 2, rest[0], rest[1]})
			rest = rest[2:]
		}
		// DISCONNECT: a clean end, so the broker does not treat it as a drop.
		conn.Write([]byte{0xe0, 0})
		return topic, rest, nil
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// connectPacket is an MQTT 3.1.1 CONNECT with a clean session, a username and
// a password. An empty password is left out, flag and all (a certificate
// login's: the brokers do not read it, and a password flag with an empty
// password is a protocol violation to some brokers, MQTT 5's [MQTT-3.1.2-19]).
func connectPacket(clientID, username, password string, keepalive uint16) []byte {
	var v []byte
	v = appendString(v, "MQTT")
	flags := byte(0xc2) // username, password, clean session
	if password == "" {
		flags = 0x82 // username, clean session
	}
	v = append(v, 4, flags) // level 4
	v = binary.BigEndian.AppendUint16(v, keepalive)
	v = appendString(v, clientID)
	v = appendString(v, username)
	if password != "" {
		v = appendString(v, password)
	}
	out := []byte{0x10}
	out = appendLength(out, len(v))
	return append(out, v...)
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendLength(b []byte, n int) []byte {
	for {
		c := byte(n % 128)
		n /= 128
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			return b
		}
	}
}

// readPacket reads one packet: its first byte and its body.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, nil, errors.New("malformed remaining length")
		}
		mul *= 128
	}
	if n > maxPacket {
		return 0, nil, fmt.Errorf("packet of %d bytes is too large", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

// Session is an MQTT connection a device keeps open (a simulated module
// that stays online): it answers the broker's keepalive with PINGREQs and
// throws away what the broker sends. Done is closed when the connection ends.
type Session struct {
	conn net.Conn
	done chan struct{}
	once sync.Once
}

// MQTTSession connects as MQTTLogin does and keeps the connection open until
// Close (or until the broker drops it: Done). A refusal is an *Error with
// Code "mqtt:<return code>".
func MQTTSession(ctx context.Context, platform, addr string, tlsConfig *tls.Config, clientID, username, password string) (*Session, error) {
	conn, r, err := mqttConnect(ctx, addr, tlsConfig, clientID, username, password)
	if err != nil {
		if rerr := refusal(platform, "MQTT login", err); rerr != nil {
			return nil, rerr
		}
		return nil, fmt.Errorf("%s: MQTT login: %w", platform, err)
	}
	conn.SetDeadline(time.Time{})
	s := &Session{conn: conn, done: make(chan struct{})}
	go func() { // read until the connection ends
		defer s.Close()
		for {
			if _, _, err := readPacket(r); err != nil {
				return
			}
		}
	}()
	go func() { // PINGREQ well inside the 60 s keepalive of connectPacket
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if _, err := conn.Write([]byte{0xc0, 0}); err != nil {
					s.Close()
					return
				}
			case <-s.done:
				return
			}
		}
	}()
	return s, nil
}

// Done is closed once the connection has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close sends DISCONNECT and closes the connection; safe to call twice.
func (s *Session) Close() error {
	s.once.Do(func() {
		s.conn.Write([]byte{0xe0, 0})
		s.conn.Close()
		close(s.done)
	})
	return nil
}
