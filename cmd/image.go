package cmd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

func newImageCmd(g *globals) *cobra.Command {
	var (
		pf             platformFlags
		format, outDir string
		device         string
	)
	c := &cobra.Command{
		Use:   "image --format F --out DIR",
		Short: "Render credential images from the ledger, without a line",
		Long: `image writes one file per device (or just --device NAME) in the chosen format, 0600:
  tencent-at     the Tencent IoT AT firmware's AT+TCDEVINFOSET command
  tencent-json   the Tencent C device SDK's device_info.json
  template:FILE  your own Go text/template over .ProductID .DeviceName .DeviceSecret .Region
                 (functions: atq quotes an AT parameter, fingerprint)`,
		Example: `  iotburn image --format tencent-json --product ABCDEFGHIJ --out images/
  iotburn image --format tencent-at --product ABCDEFGHIJ --device dev001 --out images/
  iotburn image --format template:my.cfg.tmpl --product ABCDEFGHIJ --out images/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			f, err := templates.Lookup(format)
			if err != nil {
				return err
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if err := os.MkdirAll(outDir, 0o700); err != nil {
				return err
			}
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
				err = write(c)
				if err != nil {
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
	pf.register(c, true)
	c.Flags().StringVar(&format, "format", "tencent-at", "image format: tencent-at, tencent-json, template:FILE")
	c.Flags().StringVar(&outDir, "out", "images", "directory to write the images to")
	c.Flags().StringVar(&device, "device", "", "only this device")
	return c
}
