// Package sim is the device simulator behind `iotburn sim device`: a farm of
// boards, each a pty pair whose slave end appears as DIR/ttySIM00, DIR/ttySIM01,
// … (stable symlinks to /dev/pts/N), paced at the configured baud rate, with
// its identity (MAC, IMEI) and flash kept in DIR/board-NN.json so that a
// restarted simulator brings back the same boards with what was burned into them.
//
// The files split along one line: farm.go, board.go, pty_linux.go, pace.go,
// flash.go, identity.go and fault.go are the machinery every board kind shares
// (pty, pacing, flash, faults); a kind is a firmware (firmware.go), and
// tencent*.go is the Tencent QCloud_AT firmware. An Aliyun AT or ESP32 ROM
// board is another firmware on the same machinery.
package sim
