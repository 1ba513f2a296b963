package sim

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// firmware is one kind of board's protocol. The machinery delivers received
// bytes, already paced and already past the drop/garble faults, in order, on
// one goroutine; the firmware answers through its host. One instance lives for
// one power cycle (Start, Replug), so volatile state such as echo resets the
// way it does on a real board.
type firmware interface {
	receive(p []byte)
}

// host is what a firmware may touch: the wire, the flash, the injected fault.
type host interface {
	send(p []byte)
	// file returns a copy of the board's identity and flash.
	file() boardFile
	// commit changes the flash, so that it outlives any process (a killed
	// host, a killed simulator), before returning; on error
	// nothing changed. A firmware calls it before it answers OK to a write.
	commit(change func(*boardFile)) error
	fault() Fault
	logger() *slog.Logger
	// cloud is where a board that registers itself goes: the emulator's base
	// URL and MQTT broker address (Options.Cloud, Options.MQTT; "" = none).
	cloud() (baseURL, mqttAddr string)
	// ctx ends when the board loses power (Unplug, Replug, Close), so a
	// registration in flight does not keep a dead board's reader alive.
	ctx() context.Context
}

// kinds maps --kind to a firmware constructor. Adding "aliyun-at" or "esp32"
// is one entry here and one firmware file.
var kinds = map[string]func(host) firmware{
	"tencent-at": newTencentAT,
	// tencent-at-cellular: the same firmware on a cellular module, with
	// the certificate commands (tencent_cert.go).
	"tencent-at-cellular": newTencentCellular,
	"aliyun-at":           newAliyunAT,
	"esp32":               newESP32,
}

// Kinds lists the board kinds the simulator can play.
func Kinds() []string {
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func checkKind(kind string) error {
	if _, ok := kinds[kind]; !ok {
		return fmt.Errorf("unknown board kind %q: choose one of %s", kind, strings.Join(Kinds(), ", "))
	}
	return nil
}
