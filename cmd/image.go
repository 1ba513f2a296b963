package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner/flashmap"
	"github.com/iotburn/iotburn/provision"
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
	}{{&keys.Namespace, n.namespace}, {&keys.ProductID, n.keyPID}, {&keys.DeviceName, n.keyName}, {&keys.DeviceSecret, n.keySecret}} {
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
	)
	c := &cobra.Command{
		Use:   "image --format F --out DIR",
		Short: "Render credential images from the ledger, without a line",
		Long: `image writes one file per device (or just --device NAME) in the chosen format, 0600:
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
		Example: `  iotburn image --format tencent-json --product ABCDEFGHIJ --out images/
  iotburn image --format tencent-at --product ABCDEFGHIJ --device dev001 --out images/
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
					return g.printJSON(map[string]any{"file": outDir, "bytes": n})
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
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			var written []string
			write := func(c registry.Credential) error {
				img, err := f.Render(c)
				if err != nil {
					return err
				}
				path := filepath.Join(outDir, c.DeviceName+f.Ext())
				if err := provision.WriteSecretFile(path, img); err != nil {
					return err
				}
				written = append(written, path)
				if g.json {
					return g.printJSON(map[string]string{"device_name": c.DeviceName, "file": path, "secret_fingerprint": registry.Fingerprint(c.DeviceSecret)})
				}
				return nil
			}
			if device != "" {
				c, err := l.Credential(pf.platform, pf.product, device)
				if err != nil {
					return err
				}
				if err := write(c); err != nil {
					return err
				}
			} else if err := l.Credentials(pf.platform, pf.product, write); err != nil {
				return err
			}
			if len(written) == 0 {
				return errors.New("no devices in the ledger for this product: run `iotburn create` first")
			}
			if !g.json {
				fmt.Fprintf(g.out, "wrote %d %s image(s) to %s (0600: they hold secrets)\n", len(written), f.Name(), outDir)
			}
			return nil
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
		return g.printJSON(map[string]string{"product": pf.product, "file": path, "secret_fingerprint": registry.Fingerprint(p.Secret)})
	}
	fmt.Fprintf(g.out, "wrote %s, the %s image for every board of %s (0600: it holds the product secret)\n", path, f.Name(), pf.product)
	return nil
}
