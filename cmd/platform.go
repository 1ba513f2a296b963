package cmd

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/iotburn/iotburn/provision/ledger"
	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/registry/aliyun"
	"github.com/iotburn/iotburn/registry/tencent"
)

// platformFlags are the flags of the commands that talk to a platform or
// pick devices of one product.
type platformFlags struct {
	platform string
	product  string
	endpoint string
}

func (p *platformFlags) register(c *cobra.Command, productRequired bool) {
	f := c.Flags()
	f.StringVar(&p.platform, "platform", registry.Tencent, "the IoT platform: "+strings.Join(registry.Platforms, " or "))
	f.StringVar(&p.product, "product", "", "the product (Tencent ProductId, Aliyun ProductKey)")
	f.StringVar(&p.endpoint, "endpoint", "", "API base `URL` instead of the public cloud, e.g. http://127.0.0.1:8443 for the built-in emulator (iotburn sim cloud)")
	if productRequired {
		_ = c.MarkFlagRequired("product")
	}
}

func (p *platformFlags) check() error {
	if _, err := registry.ParsePlatform(p.platform); err != nil {
		return withKind(errUsage, fmt.Errorf("--platform %w", err))
	}
	return nil
}

// registerURL is where the station registers an Aliyun board's name for it
// (the IDMAU firmware cannot): --endpoint when given (the emulator serves it),
// else the public endpoint of the region, https://iot-auth.REGION.aliyuncs.com
// (reference/aliyun.md §3a).
func (p *platformFlags) registerURL() string {
	if p.endpoint != "" {
		return p.endpoint
	}
	region := os.Getenv("ALIBABA_CLOUD_REGION_ID")
	if region == "" {
		region = "cn-shanghai"
	}
	return "https://iot-auth." + region + ".aliyuncs.com"
}

// client builds the platform client with the keys from the environment.
func (p *platformFlags) client() (registry.Platform, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if p.platform == registry.Aliyun {
		cfg, err := aliyun.ConfigFromEnv(p.endpoint)
		if err != nil {
			return nil, err
		}
		return aliyun.New(cfg)
	}
	cfg, err := tencent.ConfigFromEnv(p.endpoint)
	if err != nil {
		return nil, err
	}
	return tencent.New(cfg)
}

// openLedger opens the ledger named by --ledger.
func (g *globals) openLedger() (*ledger.Ledger, error) {
	l, err := ledger.Open(g.ledger)
	return l, withKind(errLedger, err)
}

// openExistingLedger refuses to create a new, empty ledger by accident (a typo
// in --ledger would otherwise look like "no devices").
func (g *globals) openExistingLedger() (*ledger.Ledger, error) {
	if err := g.ledgerMissing(); err != nil {
		return nil, err
	}
	return g.openLedger()
}
