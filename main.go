// Command iotburn provisions IoT boards in the factory: it creates devices on
// Tencent Cloud IoT Hub, renders their credential images and burns them over
// serial ports, with a ledger that never loses or reuses a secret.
package main

import "github.com/iotburn/iotburn/cmd"

func main() { cmd.Execute() }
