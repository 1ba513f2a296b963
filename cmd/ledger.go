package cmd

import (
	"encoding/csv"
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
)

func newLedgerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ledger",
		Short: "Look into the books: devices, secrets and boards",
	}
	c.AddCommand(newLedgerStatusCmd(g), newLedgerVoidCmd(g), newLedgerReleaseCmd(g), newLedgerExportCmd(g))
	return c
}

func newLedgerStatusCmd(g *globals) *cobra.Command {
	var pf platformFlags
	c := &cobra.Command{
		Use:   "status",
		Short: "Count credentials and boards by state",
		Example: `  iotburn ledger status
  iotburn ledger status --product ABCDEFGHIJ --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			platform := ""
			if cmd.Flags().Changed("platform") || pf.product != "" {
				platform = pf.platform
			}
			counts, err := l.Counts(platform, pf.product)
			if err != nil {
				return err
			}
			if g.json {
				byState := map[string]int{}
				for s, n := range counts.ByState {
					byState[string(s)] = n
				}
				return g.printJSON(map[string]any{"ledger": l.Path(), "total": counts.Total, "free": counts.Free, "by_state": byState})
			}
			fmt.Fprintf(g.out, "ledger %s\n", l.Path())
			fmt.Fprintf(g.out, "  %-10s %6d\n", "devices", counts.Total)
			fmt.Fprintf(g.out, "  %-10s %6d  (no board yet)\n", "free", counts.Free)
			states := make([]string, 0, len(counts.ByState))
			for s := range counts.ByState {
				states = append(states, string(s))
			}
			sort.Slice(states, func(i, j int) bool { return stateOrder(states[i]) < stateOrder(states[j]) })
			for _, s := range states {
				fmt.Fprintf(g.out, "  %-10s %6d\n", s, counts.ByState[ledger.State(s)])
			}
			return nil
		},
	}
	pf.register(c, false)
	return c
}

func stateOrder(s string) int {
	for i, v := range []ledger.State{ledger.Created, ledger.Reserved, ledger.Burning, ledger.Burned, ledger.Verified, ledger.Failed, ledger.Void} {
		if string(v) == s {
			return i
		}
	}
	return 100
}

func newLedgerVoidCmd(g *globals) *cobra.Command {
	var (
		pf             platformFlags
		device, reason string
		deleteOnCloud  bool
	)
	c := &cobra.Command{
		Use:   "void --product P --device NAME --reason TEXT",
		Short: "Scrap a credential: it is never handed to another board",
		Long: `void marks a device's credential as scrapped (a dead board, a lost unit): the ledger never
hands it to another board, and the board it was on (if any) is refused by the line.
With --delete the device is also deleted on the platform (keys from the environment).`,
		Example: `  iotburn ledger void --product ABCDEFGHIJ --device dev0042 --reason "board burnt out"
  iotburn ledger void --product ABCDEFGHIJ --device dev0042 --reason "lost" --delete`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Void(pf.platform, pf.product, device, reason); err != nil {
				return err
			}
			if deleteOnCloud {
				platform, err := pf.client()
				if err != nil {
					return fmt.Errorf("voided in the ledger, but: %w", err)
				}
				if err := platform.DeleteDevice(cmd.Context(), pf.product, device); err != nil {
					return fmt.Errorf("voided in the ledger, but not deleted on the platform: %w", err)
				}
			}
			if g.json {
				return g.printJSON(map[string]any{"device_name": device, "state": "void", "deleted": deleteOnCloud})
			}
			fmt.Fprintf(g.out, "%s is void", device)
			if deleteOnCloud {
				fmt.Fprint(g.out, " and deleted on the platform")
			}
			fmt.Fprintln(g.out)
			return nil
		},
	}
	pf.register(c, true)
	c.Flags().StringVar(&device, "device", "", "the device to void (required)")
	c.Flags().StringVar(&reason, "reason", "", "why (required; it goes into the audit)")
	c.Flags().BoolVar(&deleteOnCloud, "delete", false, "also delete the device on the platform")
	_ = c.MarkFlagRequired("device")
	_ = c.MarkFlagRequired("reason")
	return c
}

func newLedgerReleaseCmd(g *globals) *cobra.Command {
	var hw string
	c := &cobra.Command{
		Use:   "release --hw HWID",
		Short: "Give back a credential claimed by a board that never started burning",
		Long: `release frees the credential a board claimed if no burn was ever started on it (for instance
the board was identified, then pulled). A board that may hold its secret cannot be released:
void its credential instead.`,
		Example: `  iotburn ledger release --hw 24:0a:c4:12:34:56`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			if err := l.Release(hw); err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"hw_id": hw, "released": true})
			}
			fmt.Fprintf(g.out, "released the credential of board %s\n", hw)
			return nil
		},
	}
	c.Flags().StringVar(&hw, "hw", "", "the board's `HWID`: its MAC or imei:N, as the audit shows it (required)")
	_ = c.MarkFlagRequired("hw")
	return c
}

func newLedgerExportCmd(g *globals) *cobra.Command {
	var (
		pf             platformFlags
		includeSecrets bool
	)
	c := &cobra.Command{
		Use:   "export --product P",
		Short: "Print the product's devices as CSV (secrets only with --include-secrets)",
		Example: `  iotburn ledger export --product ABCDEFGHIJ > devices.csv
  iotburn ledger export --product ABCDEFGHIJ --include-secrets > backup.csv   # handle with care`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := g.openExistingLedger()
			if err != nil {
				return err
			}
			defer l.Close()
			w := csv.NewWriter(g.out)
			header := []string{"platform", "product", "device_name", "region", "secret_fingerprint"}
			if includeSecrets {
				header = append(header, "device_secret")
			}
			if err := w.Write(header); err != nil {
				return err
			}
			err = l.Credentials(pf.platform, pf.product, func(c registry.Credential) error {
				row := []string{c.Platform, c.ProductID, c.DeviceName, c.Region, registry.Fingerprint(c.DeviceSecret)}
				if includeSecrets {
					row = append(row, c.DeviceSecret)
				}
				return w.Write(row)
			})
			if err != nil {
				return err
			}
			w.Flush()
			return w.Error()
		},
	}
	pf.register(c, true)
	c.Flags().BoolVar(&includeSecrets, "include-secrets", false, "add each device secret (the output is then as sensitive as the ledger)")
	return c
}
