package ledger

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// MaxSubDevices is how many sub-devices one gateway may have: Aliyun IoT
// Platform's limit ("a maximum of 1,500 sub-devices can be registered under
// a gateway", the seeds' sub-device authentication page; the limits page
// says 2,000 in places: the lower is kept) and the emulator's, on both
// platforms.
const MaxSubDevices = 1500

var (
	// ErrGatewayFull: the pairing would give a gateway more than
	// MaxSubDevices sub-devices.
	ErrGatewayFull = errors.New("a gateway has at most 1,500 sub-devices")
	// ErrPaired: the sub-device is already paired with another gateway.
	ErrPaired = errors.New("sub-device already paired with another gateway")
	// ErrNotGateway: the device cannot be a gateway (it is a sub-device, or
	// of the sub-devices' own product), or cannot be a sub-device (it is a
	// gateway).
	ErrNotGateway = errors.New("not a gateway")
)

// Pairing is one gateway with the sub-devices the factory paired with it.
type Pairing struct {
	Platform, GatewayProduct, Gateway string
	SubProduct                        string
	SubDevices                        []string // sorted
}

// Pair records that the gateway's kit holds these sub-devices of subProduct:
// all of them or, on any refusal, none. Every device must be in the ledger
// (created, not void); a sub-device already paired with this gateway is
// kept, one paired with another is refused (ErrPaired), as is a gateway
// left with more than MaxSubDevices (ErrGatewayFull: counted before anything
// is written, with the gateway's row locked so two stations pairing one
// gateway at once count one after the other) and a gateway that is a
// sub-device or of the sub-devices' product (ErrNotGateway). It returns how
// many pairings it added.
func (l *Ledger) Pair(platform, gatewayProduct, gateway, subProduct string, subs []string) (added int, err error) {
	switch {
	case platform == "" || gatewayProduct == "" || gateway == "" || subProduct == "":
		return 0, errors.New("ledger: a pairing needs a platform, the gateway's product and name, and the sub-devices' product")
	case gatewayProduct == subProduct:
		return 0, fmt.Errorf("ledger: gateway product %s is the sub-devices' product too: a gateway product (Aliyun NodeType 1, Tencent ProductType 5) and a sub-device product are two: %w",
			gatewayProduct, ErrNotGateway)
	case len(subs) == 0:
		return 0, errors.New("ledger: a pairing needs at least one sub-device")
	}
	seen := make(map[string]bool, len(subs))
	for _, s := range subs {
		if strings.TrimSpace(s) == "" {
			return 0, errors.New("ledger: an empty sub-device name")
		}
		if seen[s] {
			return 0, fmt.Errorf("ledger: sub-device %s is listed twice", s)
		}
		seen[s] = true
	}
	if len(subs) > MaxSubDevices {
		return 0, fmt.Errorf("ledger: %d sub-devices for gateway %s: %w", len(subs), gateway, ErrGatewayFull)
	}
	err = l.write(func(t *txn) error {
		added = 0
		gwID, err := pairable(t, platform, gatewayProduct, gateway, "gateway")
		if err != nil {
			return err
		}
		var asSub int
		if err := t.QueryRow(`SELECT count(*) FROM pairings WHERE sub_id = ?`, gwID).Scan(&asSub); err != nil {
			return err
		}
		if asSub > 0 {
			return fmt.Errorf("ledger: %s/%s is paired as a sub-device, so it cannot be a gateway: %w", gatewayProduct, gateway, ErrNotGateway)
		}
		var have int
		if err := t.QueryRow(`SELECT count(*) FROM pairings WHERE gateway_id = ?`, gwID).Scan(&have); err != nil {
			return err
		}
		var fresh []int64
		for _, s := range subs {
			id, err := pairable(t, platform, subProduct, s, "sub-device")
			if err != nil {
				return err
			}
			var otherID int64
			var other string
			err = t.QueryRow(`SELECT g.id, g.product || '/' || g.device_name FROM pairings p JOIN credentials g ON g.id = p.gateway_id WHERE p.sub_id = ?`, id).Scan(&otherID, &other)
			switch {
			case err == nil && otherID == gwID:
				continue // paired already, with this gateway
			case err == nil:
				return fmt.Errorf("ledger: sub-device %s/%s is paired with gateway %s, not %s/%s: nothing was paired: %w", subProduct, s, other, gatewayProduct, gateway, ErrPaired)
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
			var gwOf int
			if err := t.QueryRow(`SELECT count(*) FROM pairings WHERE gateway_id = ?`, id).Scan(&gwOf); err != nil {
				return err
			}
			if gwOf > 0 {
				return fmt.Errorf("ledger: %s/%s is a gateway, so it cannot be a sub-device: %w", subProduct, s, ErrNotGateway)
			}
			fresh = append(fresh, id)
		}
		if have+len(fresh) > MaxSubDevices {
			return fmt.Errorf("ledger: gateway %s has %d sub-devices, %d more would make %d: %w",
				gateway, have, len(fresh), have+len(fresh), ErrGatewayFull)
		}
		now := l.nowMS()
		for _, id := range fresh {
			if _, err := t.Exec(`INSERT INTO pairings (sub_id, gateway_id, paired_at) VALUES (?, ?, ?)`, id, gwID, now); err != nil {
				return err
			}
		}
		added = len(fresh)
		return nil
	})
	return added, err
}

// pairable finds a device that can be paired (in the ledger, not void),
// locking its row (a gateway's: so pairings of one gateway are counted one
// transaction after the other on PostgreSQL).
func pairable(t *txn, platform, product, name, role string) (int64, error) {
	var id int64
	var state string
	err := t.QueryRow(`SELECT id, state FROM credentials WHERE platform = ? AND product = ? AND device_name = ?`+t.d.forUpdate,
		platform, product, name).Scan(&id, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("ledger: %s %s of %s/%s is not in the ledger: create it first (`iotburn create --product %s`): %w",
			role, name, platform, product, product, ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	if state == "void" {
		return 0, fmt.Errorf("ledger: %s %s of %s/%s was voided: %w", role, name, platform, product, ErrVoid)
	}
	return id, nil
}

// Pairings lists the gateways of gatewayProduct with their sub-devices,
// gateways in name order ("" gatewayProduct: every gateway of platform; ""
// platform: of every platform).
func (l *Ledger) Pairings(platform, gatewayProduct string) ([]Pairing, error) {
	return l.pairings(platform, gatewayProduct, "")
}

// SubDevicesOf is the pairing of one gateway (SubDevices empty: none).
func (l *Ledger) SubDevicesOf(platform, gatewayProduct, gateway string) (Pairing, error) {
	kits, err := l.pairings(platform, gatewayProduct, gateway)
	if err != nil || len(kits) == 0 {
		return Pairing{Platform: platform, GatewayProduct: gatewayProduct, Gateway: gateway}, err
	}
	return kits[0], nil
}

// pairings reads the pairings of one gateway in the query itself (""
// gateway: every one of the selection), so a verify of 100 gateways reads
// each kit once, not every kit a hundred times.
func (l *Ledger) pairings(platform, gatewayProduct, gateway string) ([]Pairing, error) {
	rows, err := l.query(`SELECT g.platform, g.product, g.device_name, s.product, s.device_name FROM pairings p
		JOIN credentials g ON g.id = p.gateway_id JOIN credentials s ON s.id = p.sub_id
		WHERE (? = '' OR g.platform = ?) AND (? = '' OR g.product = ?) AND (? = '' OR g.device_name = ?)
		ORDER BY g.platform, g.product, g.device_name, s.product, s.device_name`,
		platform, platform, gatewayProduct, gatewayProduct, gateway, gateway)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Pairing
	for rows.Next() {
		var pl, gp, gw, sp, sd string
		if err := rows.Scan(&pl, &gp, &gw, &sp, &sd); err != nil {
			return nil, err
		}
		if n := len(out); n == 0 || out[n-1].Platform != pl || out[n-1].GatewayProduct != gp || out[n-1].Gateway != gw || out[n-1].SubProduct != sp {
			out = append(out, Pairing{Platform: pl, GatewayProduct: gp, Gateway: gw, SubProduct: sp})
		}
		out[len(out)-1].SubDevices = append(out[len(out)-1].SubDevices, sd)
	}
	return out, rows.Err()
}

// movePairings copies the pairings onto the shared ledger, each on its
// devices' new ids (credIDs: this file's id → the shared ledger's).
func movePairings(src, dst *txn, credIDs map[int64]int64) error {
	rows, err := src.Query(`SELECT sub_id, gateway_id, paired_at FROM pairings ORDER BY sub_id`)
	if err != nil {
		return err
	}
	type pairing struct{ sub, gw, at int64 }
	var ps []pairing
	for rows.Next() {
		var p pairing
		if err := rows.Scan(&p.sub, &p.gw, &p.at); err != nil {
			rows.Close()
			return err
		}
		ps = append(ps, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, p := range ps {
		if _, err := dst.Exec(`INSERT INTO pairings (sub_id, gateway_id, paired_at) VALUES (?, ?, ?)`, credIDs[p.sub], credIDs[p.gw], p.at); err != nil {
			return fmt.Errorf("move pairing: %w", err)
		}
	}
	return nil
}
