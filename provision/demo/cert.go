package demo

import (
	"errors"
	"fmt"
	"time"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/registry/devauth"
	"github.com/iotburn/iotburn/registry/emulator"
	"github.com/iotburn/iotburn/templates/nvs"
)

// The certificate demo's credential partition: no Espressif kit reads a
// certificate from fctry (esp-qcloud's mass-manufacture path reads a device
// key only; esp-aliyun has no certificate path), so its boards get the
// partition alone, where a firmware following esp_secure_cert_mgr's NVS
// names would read it, and no kit app that would abort on it.
const (
	certPartOffset = 0x9000
	certPartSize   = 0x3000 // one data page is enough for an RSA-2048 pair (README)
)

// cellularKind is the simulator's cellular module with Tencent's AT
// firmware, the one AT board that takes a certificate.
const cellularKind = "tencent-at-cellular"

// certIssued is the emulator's own record of a certificate device.
func certIssued(emu *emulator.Emulator, platform, product, name string) (string, bool) {
	if platform == "aliyun" {
		c, _, ok := emu.AliyunDeviceCert(product, name)
		return c, ok
	}
	return emu.TencentDeviceCert(product, name)
}

// crossCheckCert reads every board's credential partition from its flash
// file and checks it against the emulator, independently of the ledger:
// the certificate the platform issued for the name, a key that is that
// certificate's, and no two boards holding one device.
func crossCheckCert(boardsDir string, emu *emulator.Emulator, platform, product string, want int) error {
	nsKeys, err := nvs.DefaultKeys(platform)
	if err != nil {
		return err
	}
	seen := map[string]int{}
	var errs []error
	for k := range want {
		img, err := sim.LoadFlashImage(boardsDir, k)
		if err != nil || len(img) < certPartOffset+certPartSize {
			errs = append(errs, fmt.Errorf("board %d: its flash cannot be read (%v)", k, err))
			continue
		}
		part := img[certPartOffset : certPartOffset+certPartSize]
		items, err := nvs.Read(part)
		if err != nil {
			errs = append(errs, fmt.Errorf("board %d: its partition does not parse: %w", k, err))
			continue
		}
		got := map[string]string{}
		for _, it := range items {
			if s, ok := it.Value.(string); ok && it.Namespace == nsKeys.Namespace {
				got[it.Key] = s
			}
		}
		name := got[nsKeys.DeviceName]
		issued, ok := certIssued(emu, platform, product, name)
		switch {
		case name == "":
			errs = append(errs, fmt.Errorf("board %d holds no credential", k))
			continue
		case !ok || issued != got[nsKeys.DeviceCert]:
			errs = append(errs, fmt.Errorf("board %d holds a certificate for %s that the platform did not issue", k, name))
		}
		if _, err := devauth.CheckCert(got[nsKeys.DeviceCert], got[nsKeys.DevicePrivateKey], time.Now()); err != nil {
			errs = append(errs, fmt.Errorf("board %d (%s): %w", k, name, err))
		}
		if other, dup := seen[name]; dup {
			errs = append(errs, fmt.Errorf("boards %d and %d both hold %s", other, k, name))
		}
		seen[name] = k
	}
	if len(seen) != want && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%d boards hold a certificate, want %d", len(seen), want))
	}
	return errors.Join(errs...)
}

// crossCheckCertAT is crossCheckCert for the cellular modules: each board's
// stored files (its flash file) hold the certificate the platform issued
// for the name its device info gives, and that certificate's key.
func crossCheckCertAT(boardsDir string, emu *emulator.Emulator, product string, want int) error {
	flashes, err := sim.LoadFlash(boardsDir)
	if err != nil {
		return err
	}
	seen := map[string]string{}
	var errs []error
	for k, f := range flashes {
		issued, ok := certIssued(emu, "tencent", product, f.DeviceName)
		switch {
		case f.DeviceName == "":
			errs = append(errs, fmt.Errorf("board %s holds no credential", k))
			continue
		case f.TLSMode != 2:
			errs = append(errs, fmt.Errorf("board %s holds %s in TLS mode %d, not with its certificate", k, f.DeviceName, f.TLSMode))
		case !ok || issued != f.Cert:
			errs = append(errs, fmt.Errorf("board %s holds a certificate for %s that the platform did not issue", k, f.DeviceName))
		}
		if _, err := devauth.CheckCert(f.Cert, f.Key, time.Now()); err != nil {
			errs = append(errs, fmt.Errorf("board %s (%s): %w", k, f.DeviceName, err))
		}
		if other, dup := seen[f.DeviceName]; dup {
			errs = append(errs, fmt.Errorf("boards %s and %s both hold %s", other, k, f.DeviceName))
		}
		seen[f.DeviceName] = k
	}
	if len(seen) != want && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("%d boards hold a certificate, want %d", len(seen), want))
	}
	return errors.Join(errs...)
}
