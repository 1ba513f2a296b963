package cmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/burner/sim"
	"github.com/iotburn/iotburn/provision"
	"github.com/iotburn/iotburn/registry/emulator"
)

func newSimCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "sim",
		Short: "Run the built-in platform emulator and simulated boards (demo, training, CI)",
	}
	c.AddCommand(newSimCloudCmd(g), newSimDeviceCmd(g))
	return c
}

func newSimCloudCmd(g *globals) *cobra.Command {
	var (
		listen, state string
		products      []string
	)
	c := &cobra.Command{
		Use:   "cloud",
		Short: "Serve the Tencent Cloud IoT Hub API (iotcloud 2018-06-14) on this machine",
		Long: `sim cloud is a local Tencent Cloud IoT Hub: the same API, TC3-HMAC-SHA256 signatures checked,
batch creation as asynchronous tasks, real random device secrets, request-rate limits and quotas
with the cloud's own error codes. Its state lives in --state, so a restart loses nothing.

It accepts the key pair in TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY, or makes one up,
keeps it in --state and prints it: paste the export line into the shell that runs iotburn.`,
		Example: `  iotburn sim cloud --listen 127.0.0.1:8443 --state cloud/ --product tencent:ABCDEFGHIJ
  # in another shell: the printed export line, then
  iotburn create --product ABCDEFGHIJ --names names.txt --endpoint http://127.0.0.1:8443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tencentProducts []string
			for _, p := range products {
				vendor, id, ok := strings.Cut(p, ":")
				switch {
				case !ok || id == "":
					return fmt.Errorf("--product %q: write it as tencent:PRODUCTID", p)
				case vendor == "tencent":
					tencentProducts = append(tencentProducts, id)
				default:
					return fmt.Errorf("--product %q: the emulator serves tencent products only for now", p)
				}
			}
			if err := os.MkdirAll(state, 0o700); err != nil {
				return err
			}
			id, key, made, err := emulatorKeys(state)
			if err != nil {
				return err
			}
			emu, err := emulator.New(emulator.Config{StateDir: state, SecretID: id, SecretKey: key, Products: tencentProducts, Log: g.logger()})
			if err != nil {
				return err
			}
			defer emu.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("cannot listen on %s: %w (another sim cloud running? pick another --listen)", listen, err)
			}
			endpoint := "http://" + ln.Addr().String()
			fmt.Fprintf(g.out, "iotburn sim cloud: Tencent IoT Hub API at %s (region ap-guangzhou), state in %s\n", endpoint, state)
			fmt.Fprintf(g.out, "products: %s\n", strings.Join(tencentProducts, ", "))
			if made {
				fmt.Fprintf(g.out, "keys (made up for this emulator, kept in %s):\n", filepath.Join(state, "keys.json"))
				fmt.Fprintf(g.out, "  export TENCENTCLOUD_SECRET_ID=%s TENCENTCLOUD_SECRET_KEY=%s TENCENTCLOUD_REGION=ap-guangzhou\n", id, key)
			} else {
				fmt.Fprintln(g.out, "accepting the keys in TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY")
			}
			fmt.Fprintf(g.out, "then: iotburn create --product %s --names FILE --endpoint %s\n", firstOr(tencentProducts, "P"), endpoint)
			return serveUntilDone(cmd.Context(), ln, emu)
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "address to serve on")
	c.Flags().StringVar(&state, "state", "iotburn-cloud", "directory holding the emulator's state (devices, secrets, tasks)")
	c.Flags().StringArrayVar(&products, "product", []string{"tencent:ABCDEFGHIJ"}, "a product to have, as tencent:PRODUCTID (repeatable)")
	return c
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// serveUntilDone serves h on ln until ctx is cancelled.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	}
}

// emulatorKeys returns the key pair the emulator accepts: the environment's,
// or the one kept in the state directory, or a new one (made says so).
func emulatorKeys(state string) (id, key string, made bool, err error) {
	id, key = os.Getenv("TENCENTCLOUD_SECRET_ID"), os.Getenv("TENCENTCLOUD_SECRET_KEY")
	if id != "" && key != "" {
		return id, key, false, nil
	}
	path := filepath.Join(state, "keys.json")
	var kept struct{ SecretID, SecretKey string }
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &kept); err != nil {
			return "", "", false, fmt.Errorf("%s: %w (delete it to make new keys)", path, err)
		}
		return kept.SecretID, kept.SecretKey, true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", "", false, err
	}
	kept.SecretID, kept.SecretKey = emulator.NewKeyPair()
	b, _ := json.Marshal(kept)
	if err := provision.WriteSecretFile(path, b); err != nil {
		return "", "", false, err
	}
	return kept.SecretID, kept.SecretKey, true, nil
}

func newSimDeviceCmd(g *globals) *cobra.Command {
	var opts sim.Options
	c := &cobra.Command{
		Use:   "device",
		Short: "Simulate boards on pseudo-terminals: each appears as DIR/ttySIMnn",
		Long: `sim device starts --count simulated boards, each a pseudo-terminal speaking a module's firmware
(tencent-at: the Tencent IoT AT firmware) at --baud, with its own MAC and IMEI. Each board's
flash is a file in --dir: restart on the same --dir and the same boards come back with what was
burned into them. Point the line at them with --ports 'DIR/tty*'.`,
		Example: `  iotburn sim device --kind tencent-at --count 8 --dir boards/
  # in another shell
  iotburn batch --product ABCDEFGHIJ --ports 'boards/tty*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = g.logger()
			farm, err := sim.Start(opts)
			if err != nil {
				return err
			}
			defer farm.Close()
			for _, b := range farm.Boards() {
				if g.json {
					_ = g.printJSON(map[string]string{"port": b.Path(), "mac": b.MAC(), "imei": b.IMEI(), "kind": opts.Kind})
				} else {
					fmt.Fprintf(g.out, "%-30s mac %s  imei %s\n", b.Path(), b.MAC(), b.IMEI())
				}
			}
			if !g.json {
				fmt.Fprintf(g.out, "%d %s boards at %d baud; Ctrl-C to unplug them all. Burn them with --ports '%s'\n",
					len(farm.Boards()), opts.Kind, opts.Baud, filepath.Join(opts.Dir, "tty*"))
			}
			<-cmd.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&opts.Kind, "kind", "tencent-at", "board firmware: tencent-at")
	c.Flags().IntVar(&opts.Count, "count", 8, "how many boards")
	c.Flags().StringVar(&opts.Dir, "dir", "iotburn-boards", "directory for the boards' ports and flash files")
	c.Flags().IntVar(&opts.Baud, "baud", 115200, "line rate the boards are paced at")
	return c
}
