package cmd

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/ledger"
)

func newLedgerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "ledger",
		Short: "Look into the books: devices, secrets and boards",
	}
	c.AddCommand(newLedgerStatusCmd(g))
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
