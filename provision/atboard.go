package provision

import (
	"context"

	"github.com/iotburn/iotburn/burner"
	"github.com/iotburn/iotburn/burner/at"
	"github.com/iotburn/iotburn/registry"
)

// OpenATBoard opens AT-command boards at baud, speaking the platform's
// firmware dialect ("tencent": the Tencent IoT AT firmware, "aliyun": Alibaba's
// IoT AT firmware).
func OpenATBoard(platform string, baud int) OpenBoard {
	dialect, derr := at.ParseDialect(platform)
	return func(path string) (Board, error) {
		if derr != nil {
			return nil, derr
		}
		p, err := burner.Open(path, baud)
		if err != nil {
			return nil, err
		}
		d := at.NewDialect(p, dialect)
		// A board that answers garbage or nothing will not do better on a
		// third try; two keep a wrong --baud from stalling a port for long.
		d.Attempts = 2
		return &atBoard{port: p, drv: d}, nil
	}
}

type atBoard struct {
	port burner.Port
	drv  *at.Driver
	id   at.Identity // from the last Identify
}

// MAC and IMEI are the board's own ids, for product-level names.
func (b *atBoard) MAC() string  { return b.id.MAC }
func (b *atBoard) IMEI() string { return b.id.IMEI }

func (b *atBoard) Identify(ctx context.Context) (string, error) {
	if err := b.drv.Hello(ctx); err != nil {
		return "", err
	}
	id, err := b.drv.Identify(ctx)
	if err != nil {
		return "", err
	}
	b.id = id
	return id.HardwareID(), nil
}

func (b *atBoard) Write(ctx context.Context, image []byte) error {
	return b.drv.RunScript(ctx, image)
}

func (b *atBoard) Verify(ctx context.Context, c registry.Credential) error {
	return b.drv.Verify(ctx, c)
}

func (b *atBoard) Close() error { return b.port.Close() }
