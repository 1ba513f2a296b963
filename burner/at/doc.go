// Package at drives AT-command modules over a burner.Port.
//
// conn.go is the line protocol every AT firmware shares: send a line, collect
// lines until OK/ERROR or a timeout, wait for a URC. It knows nothing of any
// vendor. The Tencent QCloud_AT commands (identify, write with AT+TCDEVINFOSET,
// read back, restore) sit on top in tencent*.go and script.go; Aliyun's AT
// modules will be another set of commands on the same conn.
//
// Secrets: a credential line holds the device secret. No error, log or panic
// in this package quotes a line that was sent, only the command's name, and
// lines the board sends back are shown only when they cannot hold an echo.
package at
