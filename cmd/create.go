package cmd

import (
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision"
)

func newCreateCmd(g *globals) *cobra.Command {
	var (
		pf    platformFlags
		names string
	)
	c := &cobra.Command{
		Use:   "create --product P --names FILE",
		Short: "Create devices on the platform in batches and store their secrets in the ledger",
		Long: `create makes one platform device per name and stores each device's secret in the ledger.

Names come from a plain list (one a line) or a CSV (a DeviceName/name/sn/imei/mac column, or the
first column). Every name is checked against the platform's rules before anything is sent.
Every batch call is journalled in the ledger before it is sent: if create is killed at any point,
running it again recovers what the platform already made and creates nothing twice.

Cloud keys come from the environment: TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY,
TENCENTCLOUD_REGION (default ap-guangzhou); for --platform aliyun ALIBABA_CLOUD_ACCESS_KEY_ID,
ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_REGION_ID (default cn-shanghai).`,
		Example: `  # against the built-in emulator (iotburn sim cloud prints its keys)
  iotburn create --product ABCDEFGHIJ --names sn.csv --endpoint http://127.0.0.1:8443
  # against Tencent Cloud
  export TENCENTCLOUD_SECRET_ID=... TENCENTCLOUD_SECRET_KEY=...
  iotburn create --product ABCDEFGHIJ --names sn.txt
  # Alibaba Cloud IoT Platform
  iotburn create --platform aliyun --product a1Xyz --names imei.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			platform, err := pf.client()
			if err != nil {
				return err
			}
			list, err := provision.ReadNamesFile(names, platform.ValidateName)
			if err != nil {
				return err
			}
			l, err := g.openLedger()
			if err != nil {
				return err
			}
			defer l.Close()

			var bar *progressbar.ProgressBar
			if !g.json && isTerminal(g.errOut) {
				bar = progressbar.NewOptions(len(list),
					progressbar.OptionSetWriter(g.errOut),
					progressbar.OptionSetDescription("creating devices"),
					progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true),
					progressbar.OptionClearOnFinish())
			}
			start := time.Now()
			res, err := provision.Create(cmd.Context(), provision.CreateOptions{
				Platform: platform, Ledger: l, Product: pf.product, Names: list,
				Progress: func(done, total int) {
					if bar != nil {
						bar.ChangeMax(total)
						_ = bar.Set(done)
					}
				},
			})
			if bar != nil {
				_ = bar.Finish()
			}
			elapsed := time.Since(start)
			if g.json {
				out := map[string]any{
					"platform": platform.Name(), "product": pf.product,
					"requested": res.Requested, "skipped": res.Skipped, "healed": res.Healed,
					"created": res.Created, "failed": res.Failed, "calls": res.Calls,
					"seconds": elapsed.Seconds(),
				}
				if err != nil {
					out["error"] = err.Error()
				}
				if perr := g.printJSON(out); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintf(g.out, "%s product %s: %d names, %d created, %d already in the ledger", platform.Name(), pf.product, res.Requested, res.Created, res.Skipped)
				if res.Healed > 0 {
					fmt.Fprintf(g.out, ", %d recovered from an interrupted run", res.Healed)
				}
				fmt.Fprintf(g.out, " (%d batch calls, %.1fs)\n", res.Calls, elapsed.Seconds())
				if len(res.Failed) > 0 {
					fmt.Fprintf(g.out, "refused by the platform (%d):\n  %s\n", len(res.Failed), strings.Join(res.Failed, "\n  "))
				}
				fmt.Fprintf(g.out, "secrets are in %s (keep it safe: it is the only copy)\n", l.Path())
			}
			if err != nil {
				return err
			}
			if len(res.Failed) > 0 {
				return &exitError{kind: errFailed, err: fmt.Errorf("%d device(s) were not created", len(res.Failed))}
			}
			return nil
		},
	}
	pf.register(c, true)
	c.Flags().StringVar(&names, "names", "", "file of device names: a plain list or a CSV (required)")
	_ = c.MarkFlagRequired("names")
	return c
}
