package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
	"github.com/iotburn/iotburn/templates/nvs"
)

// nvsFlags are the NVS partition settings of `image --format nvs`.
type nvsFlags struct {
	size      string
	sizeFlag  string // --size on image, --partition-size on the line
	version   int
	fromCSV   string
	namespace string
	keyPID    string
	keyName   string
	keySecret string
	keyCert   string
	keyKey    string
}

func (n *nvsFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&n.fromCSV, "from-csv", "", "nvs: build one partition from this nvs_partition_gen CSV (no ledger), written to --out")
	n.registerKeys(c, "size", "0x6000", "nvs: partition size (a multiple of 0x1000, at least 0x3000)")
}

// registerKeys registers the partition settings; the size flag is --size on
// image (as Espressif's generator calls it) and --partition-size on the line.
func (n *nvsFlags) registerKeys(c *cobra.Command, sizeFlag, sizeDefault, sizeUsage string) {
	f := c.Flags()
	n.sizeFlag = sizeFlag
	f.StringVar(&n.size, sizeFlag, sizeDefault, sizeUsage)
	f.IntVar(&n.version, "nvs-version", 2, "nvs: format version, 1 or 2 (multi-page blobs)")
	f.StringVar(&n.namespace, "nvs-namespace", "", "nvs: namespace of the credential keys (default: the device SDK's, qcloud-key / aliyun-key)")
	f.StringVar(&n.keyPID, "nvs-key-product", "", "nvs: key of the product id (default product_id / ProductKey)")
	f.StringVar(&n.keyName, "nvs-key-name", "", "nvs: key of the device name (default device_name / DeviceName)")
	f.StringVar(&n.keySecret, "nvs-key-secret", "", "nvs: key of the device secret (default device_secret / DeviceSecret)")
	f.StringVar(&n.keyCert, "nvs-key-cert", "", "nvs: key of a certificate device's certificate, a PEM string (default dev_cert, esp_secure_cert_mgr's name)")
	f.StringVar(&n.keyKey, "nvs-key-private-key", "", "nvs: key of a certificate device's private key, a PEM string (default priv_key, esp_secure_cert_mgr's name)")
}

// format builds the per-device NVS format for the platform. An empty size
// is left 0: the line sizes it from the partition table.
func (n *nvsFlags) format(platform string) (nvs.Format, error) {
	size := 0
	if n.size != "" {
		var err error
		if size, err = nvs.ParseSize(n.size); err != nil {
			return nvs.Format{}, fmt.Errorf("--%s: %w", n.sizeFlag, err)
		}
	}
	if n.version != 1 && n.version != 2 {
		return nvs.Format{}, fmt.Errorf("--nvs-version %d: use 1 or 2", n.version)
	}
	keys, err := nvs.DefaultKeys(platform)
	if err != nil {
		return nvs.Format{}, err
	}
	for _, o := range []struct {
		dst *string
		v   string
	}{{&keys.Namespace, n.namespace}, {&keys.ProductID, n.keyPID}, {&keys.DeviceName, n.keyName}, {&keys.DeviceSecret, n.keySecret},
		{&keys.DeviceCert, n.keyCert}, {&keys.DevicePrivateKey, n.keyKey}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	return nvs.Format{Size: size, Version: nvs.Version(n.version), Keys: keys}, nil
}

// fromCSVFile is the drop-in for Espressif's `nvs_partition_gen.py generate`:
// the same CSV, and `file` rows resolved against the working directory, as
// the generator resolves them.
func (n *nvsFlags) fromCSVFile(out string, warn io.Writer) (int, error) {
	size, err := nvs.ParseSize(n.size)
	if err != nil {
		return 0, fmt.Errorf("--size: %w", err)
	}
	f, err := os.Open(n.fromCSV)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	entries, err := nvs.ParseCSV(f, wd)
	if err != nil {
		return 0, fmt.Errorf("%s: %w (nothing written)", n.fromCSV, err)
	}
	img, err := nvs.Generate(entries, size, nvs.Version(n.version))
	if err != nil {
		return 0, fmt.Errorf("%s: %w (nothing written)", n.fromCSV, err)
	}
	for _, e := range nvs.ReopenedRows(entries) {
		fmt.Fprintf(warn, "warning: %s line %d: key %q is stored under the newest namespace, not %q, as Espressif's generator does: move the row up to its namespace\n", n.fromCSV, e.Line, e.Key, e.Namespace)
	}
	return len(img), provision.WriteSecretFile(out, img)
}

func newImageCmd(g *globals) *cobra.Command {
	var (
		pf              platformFlags
		nf              nvsFlags
		format, outDir  string
		device          string
		perProduct      bool
		table, partName string
		tableOffset     string
		bound, again    bool
		count           int
	)
	c := &cobra.Command{
		Use:   "image --format F --out DIR",
		Short: "Render credential images from the ledger, without a line",
		Long: `image writes one file per device (or just --device NAME) in the chosen format, 0600.

An image flashed with another tool takes its credential out of the line's hands, so image keeps
the promise that no credential is ever in two boards:
  (default)      free credentials only (--count N of them, oldest first; all without it), each
                 recorded as exported in the ledger: the line never gives it to a board
  --exported     the credentials exported before, written again (lost files, a run cut short)
  --bound        the credentials already on boards, each for its own board (re-flashing it);
                 --json names the board of each file
A credential on a board is never written for anything but that board.

Formats:
  tencent-at     the Tencent IoT AT firmware's AT+TCDEVINFOSET command
  tencent-json   the Tencent C device SDK's device_info.json
  aliyun-at      the Alibaba IoT AT modules' AT+IDMAU command
  aliyun-json    ProductKey / DeviceName / DeviceSecret as JSON
  nvs            an ESP-IDF NVS partition (--size, --nvs-version, key names settable),
                 byte-identical to Espressif's nvs_partition_gen
  template:FILE  your own Go text/template over .ProductID .DeviceName .DeviceSecret .Region
                 (functions: atq quotes an AT parameter, fingerprint)

With --format nvs --from-csv FILE it is a drop-in for Espressif's generator: the same CSV
(namespace/data/file rows, every encoding) in, the same bytes out, to the file --out names.`,
		Example: `  iotburn image --format tencent-json --product ABCDEFGHIJ --out images/            # every free one, exported
  iotburn image --format tencent-json --product ABCDEFGHIJ --count 50 --out images/ # 50 free ones, exported
  iotburn image --format tencent-at --product ABCDEFGHIJ --device dev001 --out images/
  iotburn image --format tencent-json --product ABCDEFGHIJ --exported --out images/ # write those again
  iotburn image --format tencent-at --product ABCDEFGHIJ --bound --json --out reflash/
  iotburn image --format nvs --product ABCDEFGHIJ --size 0x6000 --out images/
  iotburn image --format nvs --from-csv mfg.csv --size 0x6000 --nvs-version 2 --out nvs.bin
  iotburn image --format template:my.cfg.tmpl --product ABCDEFGHIJ --out images/
  iotburn image --format nvs --product ABCDEFGHIJ --per-product --out images/     # product-level keys`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nf.fromCSV != "" {
				if format != "nvs" {
					return errors.New("--from-csv goes with --format nvs")
				}
				n, err := nf.fromCSVFile(outDir, g.errOut)
				if err != nil {
					return err
				}
				if g.json {
					return g.emit(fileEvent{Type: typeEvent, Event: "file", File: outDir, Bytes: n})
				}
				fmt.Fprintf(g.out, "wrote %s (%d bytes)\n", outDir, n)
				return nil
			}
			if pf.product == "" {
				return errors.New("--product is required (or --from-csv with --format nvs)")
			}
			if err := pf.check(); err != nil {
				return err
			}
			if err := checkExportFlags(perProduct, bound, again, count, device); err != nil {
				return err
			}
			var f templates.Format
			var err error
			if format == "nvs" {
				f, err = imageNVSFormat(cmd, &nf, pf.platform, table, tableOffset, partName)
			} else {
				f, err = templates.Lookup(format)
			}
			if err != nil {
				return err
			}
			if err := os.MkdirAll(outDir, 0o700); err != nil {
				return err
			}
			if perProduct {
				return writePerProduct(cmd, g, &pf, f, outDir)
			}
			if err := writableDir(outDir); err != nil {
				return err
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			kind := ledger.ExportFree
			switch {
			case bound:
				kind = ledger.ExportBound
			case again:
				kind = ledger.ExportAgain
			}
			return exportImages(g, l, ledger.ExportRequest{Platform: pf.platform, Product: pf.product, Kind: kind, Device: device, Max: count}, f, outDir)
		},
	}
	pf.register(c, false)
	nf.register(c)
	c.Flags().StringVar(&format, "format", "tencent-at", "image format: tencent-at, tencent-json, aliyun-at, aliyun-json, nvs, template:FILE")
	c.Flags().StringVar(&outDir, "out", "images", "directory to write the images to (with --from-csv: the .bin file)")
	c.Flags().StringVar(&device, "device", "", "only this device")
	c.Flags().StringVar(&table, "partition-table", "", "nvs: size each image for its partition in this table (ESP-IDF CSV or binary)")
	c.Flags().StringVar(&partName, "partition-name", provision.DefaultPartitionName, "nvs: the partition's name in --partition-table")
	c.Flags().StringVar(&tableOffset, "partition-table-offset", "0x8000", "nvs: where --partition-table sits in flash")
	c.Flags().BoolVar(&bound, "bound", false, "only the credentials already on boards, each for its own board (to re-flash those boards)")
	c.Flags().BoolVar(&again, "exported", false, "only the credentials exported before, written again")
	c.Flags().IntVar(&count, "count", 0, "export at most N free credentials (default: every free one)")
	c.Flags().BoolVar(&perProduct, "per-product", false, "one image for every board of the product: its ProductSecret (fetched from the platform), no device name or secret (for firmware that names itself and registers)")
	return c
}

// imageNVSFormat is the NVS format of `image`: with --partition-table, sized
// for the partition it goes into, and refused if --size would not fit there,
// as the line refuses it.
func imageNVSFormat(cmd *cobra.Command, nf *nvsFlags, platform, table, tableOffset, partName string) (templates.Format, error) {
	f, err := nf.format(platform)
	if err != nil || table == "" {
		return f, err
	}
	off, err := flashmap.ParseNumber(tableOffset)
	if err != nil {
		return nil, fmt.Errorf("--partition-table-offset: %w", err)
	}
	t, err := readTableFile(table, off)
	if err != nil {
		return nil, err
	}
	p, err := t.Find(partName)
	if err != nil {
		return nil, err
	}
	if !cmd.Flags().Changed("size") {
		f.Size = int(p.Size)
	}
	region := flashmap.Region{Name: "credential partition " + partName, Offset: p.Offset, Size: uint32(f.Size), Credential: true}
	if err := flashmap.Check([]flashmap.Region{region}, 0, t); err != nil {
		return nil, err
	}
	return f, nil
}

// writePerProduct renders the product-level image shared by every board of
// the product, with the ProductSecret the platform tells (cloud keys from
// the environment, never the command line).
func writePerProduct(cmd *cobra.Command, g *globals, pf *platformFlags, f templates.Format, outDir string) error {
	client, err := pf.client()
	if err != nil {
		return fmt.Errorf("--per-product needs the platform, for the product's secret: %w", err)
	}
	pi, ok := client.(registry.ProductInfo)
	if !ok {
		return fmt.Errorf("%s cannot tell product secrets", pf.platform)
	}
	p, err := pi.Product(cmd.Context(), pf.product)
	if err != nil {
		return err
	}
	if p.Secret == "" {
		return fmt.Errorf("%s product %s has no ProductSecret the API shows: switch dynamic registration on for it", pf.platform, pf.product)
	}
	img, err := f.Render(registry.Credential{Platform: pf.platform, ProductID: pf.product, ProductSecret: p.Secret, Region: client.Region()})
	if err != nil {
		return fmt.Errorf("%w (a per-product image has no device name: this format needs one, burn with `iotburn batch --mode product-preregistered` instead)", err)
	}
	path := filepath.Join(outDir, pf.product+f.Ext())
	if err := provision.WriteSecretFile(path, img); err != nil {
		return err
	}
	if g.json {
		return g.emit(fileEvent{Type: typeEvent, Event: "file", File: path, Product: pf.product, Fingerprint: registry.Fingerprint(p.Secret)})
	}
	fmt.Fprintf(g.out, "wrote %s, the %s image for every board of %s (0600: it holds the product secret)\n", path, f.Name(), pf.product)
	return nil
}

// checkExportFlags refuses export flags that contradict each other, before
// anything is read or written.
func checkExportFlags(perProduct, bound, again bool, count int, device string) error {
	switch {
	case perProduct && (bound || again || count != 0 || device != ""):
		return usagef("--per-product writes the product's one image: it takes no --bound, --exported, --count or --device")
	case bound && again:
		return usagef("--bound and --exported choose different credentials: give one")
	case count < 0:
		return usagef("--count %d: give how many free credentials to export, or leave it out for all", count)
	case count > 0 && (bound || again || device != ""):
		return usagef("--count goes with free credentials of the whole product, not with --bound, --exported or --device")
	}
	return nil
}

// writableDir makes dir (0700) and proves a file can be written there, so an
// export is not recorded for files that cannot be written.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return usagef("--out %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".iotburn-probe-*")
	if err != nil {
		return usagef("--out %s cannot be written: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// exportImages records the export in the ledger first, then writes each
// image. That order keeps the promise whatever happens: a crash in between
// leaves credentials recorded as exported without files (`--exported`
// writes them), never a file whose credential the line may still give to a
// board. The first image is rendered inside the ledger's transaction, so a
// format that cannot render records nothing.
func exportImages(g *globals, l *ledger.Ledger, r ledger.ExportRequest, f templates.Format, outDir string) error {
	r.Station, _ = os.Hostname()
	r.Note = fmt.Sprintf("%s image to %s", f.Name(), outDir)
	rendered := false
	r.Check = func(c registry.Credential) error {
		if rendered {
			return nil
		}
		rendered = true
		if _, err := f.Render(c); err != nil {
			return fmt.Errorf("render %s for %s: %w (nothing was exported)", f.Name(), c.DeviceName, err)
		}
		return nil
	}
	items, err := l.Export(r)
	switch {
	case errors.Is(err, ledger.ErrNoCredentials):
		return err
	case errors.Is(err, ledger.ErrTaken), errors.Is(err, ledger.ErrNotFound), errors.Is(err, ledger.ErrVoid), errors.Is(err, ledger.ErrState):
		return withKind(errUsage, err)
	case err != nil:
		return withKind(errLedger, err)
	}
	newly := 0
	for i, it := range items {
		c := it.Cred
		// A certificate device's image may be several files (the SDK's
		// device_info.json beside certs/): path names the first.
		files, err := templates.Files(f, c)
		path := filepath.Join(outDir, c.DeviceName+f.Ext())
		for j, file := range files {
			p := filepath.Join(outDir, filepath.FromSlash(file.Name))
			if j == 0 {
				path = p
			}
			if err = os.MkdirAll(filepath.Dir(p), 0o700); err == nil {
				err = provision.WriteSecretFile(p, file.Data)
			}
			if err != nil {
				break
			}
		}
		if err != nil {
			left := make([]string, 0, len(items)-i)
			for _, rest := range items[i:] {
				left = append(left, rest.Cred.DeviceName)
			}
			return fmt.Errorf("%s: %w\n%d of %d image(s) written; %s recorded as exported but not written: "+
				"fix the cause and run `iotburn image --exported` to write them, or void them (`iotburn ledger void`)",
				c.DeviceName, err, i, len(items), strings.Join(left, ", "))
		}
		exported := r.Kind == ledger.ExportFree && it.From == ledger.Created
		if exported {
			newly++
		}
		if g.json {
			if err := g.emit(imageEvent{Type: typeEvent, Event: "file", File: path, DeviceName: c.DeviceName, Fingerprint: c.SecretFingerprint(),
				StateBefore: string(it.From), Exported: exported, HWID: it.HWID}); err != nil {
				return err
			}
		} else if r.Kind == ledger.ExportBound {
			fmt.Fprintf(g.out, "  %s  for board %s (%s)\n", path, it.HWID, it.From)
		}
	}
	if g.json {
		return nil
	}
	switch r.Kind {
	case ledger.ExportBound:
		fmt.Fprintf(g.out, "wrote %d %s image(s) to %s of credentials already on boards, each for its own board only (0600: they hold secrets)\n", len(items), f.Name(), outDir)
	default:
		counts, err := l.Counts(r.Platform, r.Product)
		if err != nil {
			return err
		}
		fmt.Fprintf(g.out, "wrote %d %s image(s) to %s (0600: they hold secrets)", len(items), f.Name(), outDir)
		if newly > 0 {
			fmt.Fprintf(g.out, "; %d credential(s) newly exported: the line will never give them to a board (%d free left for the line)", newly, counts.Free)
		}
		if again := len(items) - newly; again > 0 {
			fmt.Fprintf(g.out, "; %d exported before, written again", again)
		}
		fmt.Fprintln(g.out)
	}
	return nil
}
