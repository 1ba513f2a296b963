package ledger

import (
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iotburn/iotburn/provision/ledger/pgtest"
	"github.com/iotburn/iotburn/registry"
)

// certCred is a certificate device as the platform answers it: no secret,
// a certificate and a private key (PEM). The ledger stores them as text
// and never parses them, so stand-ins that are told apart per name do.
func certCred(product, name string) registry.Credential {
	return registry.Credential{Platform: "tencent", ProductID: product, DeviceName: name, Region: "ap-guangzhou",
		DeviceCert:       "-----BEGIN CERTIFICATE-----\nCERT-" + name + "\n-----END CERTIFICATE-----\n",
		DevicePrivateKey: "-----BEGIN PRIVATE KEY-----\nKEY-" + name + "\n-----END PRIVATE KEY-----\n"}
}

// A certificate device's certificate and key are stored by Complete and
// come back with every read a board or an export makes; a second answer
// with another key is a conflict, as another secret is.
func TestCertCredentials(t *testing.T) {
	eachEngine(t, func(t *testing.T, e testEngine) {
		l := e.open(t)
		r, err := l.Journal("tencent", "PC", []string{"c1", "c2", "c3"})
		if err != nil {
			t.Fatal(err)
		}
		creds := []registry.Credential{certCred("PC", "c1"), certCred("PC", "c2"), certCred("PC", "c3")}
		if n, err := l.Complete(r.ID, creds); err != nil || n != 3 {
			t.Fatalf("Complete = %d, %v", n, err)
		}
		want := certCred("PC", "c1")
		c, err := l.Credential("tencent", "PC", "c1")
		if err != nil || c.DeviceCert != want.DeviceCert || c.DevicePrivateKey != want.DevicePrivateKey || c.DeviceSecret != "" {
			t.Fatalf("Credential(c1) = %+v, %v", c, err)
		}
		u, err := l.Claim("tencent", "PC", "A1", "st1", "p0")
		if err != nil {
			t.Fatal(err)
		}
		if u.Cred.DeviceName != "c1" || u.Cred.DeviceCert != want.DeviceCert || u.Cred.DevicePrivateKey != want.DevicePrivateKey {
			t.Fatalf("claimed %+v", u.Cred)
		}
		// Certificate devices have a secret to export (their key), unlike
		// product-level names.
		items, err := l.Export(ExportRequest{Platform: "tencent", Product: "PC", Kind: ExportFree, Max: 1, Note: "nvs " + certCred("PC", "c2").DevicePrivateKey})
		if err != nil || len(items) != 1 || items[0].Cred.DeviceName != "c2" || items[0].Cred.DevicePrivateKey != certCred("PC", "c2").DevicePrivateKey {
			t.Fatalf("Export = %+v, %v", items, err)
		}
		// The event's note lost the key a careless caller put in it.
		if n := rawInt(t, l, `SELECT count(*) FROM events WHERE error LIKE '%KEY-c2%'`); n != 0 {
			t.Errorf("%d event(s) hold c2's private key", n)
		}
		items, err = l.Export(ExportRequest{Platform: "tencent", Product: "PC", Kind: ExportFree, Device: "c3"})
		if err != nil || len(items) != 1 || items[0].Cred.DeviceCert != certCred("PC", "c3").DeviceCert {
			t.Fatalf("Export(c3) = %+v, %v", items, err)
		}
		var seen []string
		if err := l.Credentials("tencent", "PC", func(c registry.Credential) error {
			if c.DevicePrivateKey != certCred("PC", c.DeviceName).DevicePrivateKey {
				t.Errorf("Credentials: %s has key %q", c.DeviceName, c.DevicePrivateKey)
			}
			seen = append(seen, c.DeviceName)
			return nil
		}); err != nil || strings.Join(seen, ",") != "c1,c2,c3" {
			t.Fatalf("Credentials: %v %v", seen, err)
		}

		r2, err := l.Journal("tencent", "PC", []string{"c1"})
		if err != nil {
			t.Fatal(err)
		}
		other := certCred("PC", "c1")
		other.DevicePrivateKey = "-----BEGIN PRIVATE KEY-----\nANOTHER\n-----END PRIVATE KEY-----\n"
		n, err := l.Complete(r2.ID, []registry.Credential{other})
		var ce *SecretConflictError
		if n != 0 || !errors.Is(err, ErrSecretDiffers) || !errors.As(err, &ce) || len(ce.Devices) != 1 {
			t.Fatalf("Complete with another key = %d, %v", n, err)
		}
		if strings.Contains(err.Error(), "ANOTHER") || strings.Contains(err.Error(), "KEY-c1") {
			t.Errorf("the conflict names a key: %v", err)
		}
		if c, _ := l.Credential("tencent", "PC", "c1"); c.DevicePrivateKey != want.DevicePrivateKey {
			t.Errorf("the stored key was replaced")
		}
		if p, err := l.Check(t.Context()); err != nil || len(p) != 0 {
			t.Errorf("check: %v %v", p, err)
		}
	})
}

// A v4 file (as iotburn wrote it before certificates) migrates to v5: its
// devices keep their secrets and get no certificate, and certificate
// devices can be stored after.
func TestMigrateV4ToV5SQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.db")
	db, err := sql.Open("sqlite", path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{migrations[0], migrations[1], migrations[2],
		`ALTER TABLE units ADD COLUMN lease_until INTEGER`, migrations[3], `PRAGMA user_version = 4`,
		`INSERT INTO requests (id, platform, product, names, task_id, state, created_at, done_at)
			VALUES (1, 'tencent', 'P1', '["d1"]', 'task-1', 'done', 0, 0)`,
		`INSERT INTO credentials (platform, product, region, device_name, secret, request_id, created_at)
			VALUES ('tencent', 'P1', 'ap-guangzhou', 'd1', 'S3CRET-d1', 1, 0)`}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkV5(t, l)
}

func TestMigrateV4ToV5Postgres(t *testing.T) {
	url := pgtest.NewDB(t)
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(pgMigrations[0].sql); err != nil {
		t.Fatal(err)
	}
	// Ids from the identity, as a v4 iotburn wrote them.
	if _, err := db.Exec(`INSERT INTO requests (platform, product, names, task_id, state, created_at, done_at)
			VALUES ('tencent', 'P1', '["d1"]', 'task-1', 'done', 0, 0);
		INSERT INTO credentials (platform, product, region, device_name, secret, request_id, created_at)
			SELECT 'tencent', 'P1', 'ap-guangzhou', 'd1', 'S3CRET-d1', id, 0 FROM requests`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l, err := Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkV5(t, l)
}

func checkV5(t *testing.T, l *Ledger) {
	t.Helper()
	// Migrated through v5 to the current version (v6 added pairings).
	if v, err := l.SchemaVersion(); err != nil || v != 6 || Version != 6 {
		t.Fatalf("version %d %v, want 6 (Version %d)", v, err, Version)
	}
	c, err := l.Credential("tencent", "P1", "d1")
	if err != nil || c.DeviceSecret != "S3CRET-d1" || c.DeviceCert != "" || c.DevicePrivateKey != "" {
		t.Fatalf("d1 after migrating: %+v %v", c, err)
	}
	r, err := l.Journal("tencent", "PC", []string{"c1"})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := l.Complete(r.ID, []registry.Credential{certCred("PC", "c1")}); err != nil || n != 1 {
		t.Fatalf("Complete = %d, %v", n, err)
	}
	if c, err := l.Credential("tencent", "PC", "c1"); err != nil || c.DevicePrivateKey != certCred("PC", "c1").DevicePrivateKey {
		t.Fatalf("c1: %+v %v", c, err)
	}
	if p, err := l.Check(t.Context()); err != nil || len(p) != 0 {
		t.Errorf("check: %v %v", p, err)
	}
}
