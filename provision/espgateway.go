package provision

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/iotburn/iotburn/registry"
	"github.com/iotburn/iotburn/templates"
)

// An ESP32 gateway on Aliyun holds its kit in its NVS partition (batch
// --kit) and is told nothing: its application, on its first connect,
// registers each sub-device of the kit through the gateway, adds it to its
// topology and logs it in (Aliyun's gateway flows; the application is
// burner/sim's model of iotkit-embedded's linkkit_example_gateway.c, which
// does it one sub-device a second and prints "subdev <name> add succeed" or
// "subdev <name> add failed" for each, esp32_gateway.go). BringIn boots it
// and reads those lines.

// BurnedWithKit: an ESP32's partition holds the kit where its NVS keys have
// a place for one (nvs.AliyunKeys).
func (b *espBoard) BurnedWithKit(platform string) bool {
	return templates.CarriesKit(b.plan.o.Format, platform)
}

// espSubdevAdded is linkkit_example_gateway.c's line after each sub-device
// (EXAMPLE_TRACE "subdev %s add succeed" / "subdev %s add failed").
var espSubdevAdded = regexp.MustCompile(`: subdev (\S+) add (succeed|failed)$`)

// BringIn resets the gateway into its application and waits for its line
// on each sub-device of the kit (subs: the ledger's, whose secrets the
// board never sees: it registers each itself). The gateway's own login
// failing settles it as BootApp's verdicts do. It returns the sub-devices
// the application added, "ProductKey/DeviceName".
func (b *espBoard) BringIn(ctx context.Context, subs []registry.Credential) ([]string, error) {
	if len(subs) == 0 {
		return nil, nil
	}
	if subs[0].Platform != registry.Aliyun {
		return nil, fmt.Errorf("%w: no ESP32 gateway application is modelled for %s (Tencent's gateway is its QCloud_AT module)", ErrNoGatewayCommands, subs[0].Platform)
	}
	product := map[string]string{}
	for _, s := range subs {
		product[s.DeviceName] = s.ProductID
	}
	if err := b.resetIntoApp(ctx); err != nil {
		return nil, err
	}
	var added, failed []string
	var verdict espAppVerdict
	var shown string
	_, err := b.consoleLines(ctx, func(line string) bool {
		if m := espSubdevAdded.FindStringSubmatch(line); m != nil {
			if m[2] == "succeed" {
				added = append(added, product[m[1]]+"/"+m[1])
			} else {
				failed = append(failed, m[1])
			}
			return len(added)+len(failed) >= len(subs)
		}
		if v, s := espAppVerdictOf(line); v != 0 && v != appConnected {
			verdict, shown = v, s
			return true
		}
		return false
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("the gateway's application added %d of its %d sub-devices: %w", len(added)+len(failed), len(subs), err)
	case verdict == appBoardFault:
		return nil, fmt.Errorf("the gateway's application says %q: %w", shown, errAppFailed)
	case verdict == appLoginRefused:
		return nil, fmt.Errorf("the broker refused the gateway's login (%q): %w", shown, ErrLoginRefused)
	case verdict != 0:
		return nil, fmt.Errorf("the gateway could not reach the platform (%q): %w", shown, registry.ErrUnreachable)
	case len(failed) > 0:
		return nil, fmt.Errorf("%w: the gateway could not add %s (its console: \"subdev … add failed\"; the platform's reason is in its log)", errGatewayMismatch, strings.Join(failed, ", "))
	}
	return added, nil
}
