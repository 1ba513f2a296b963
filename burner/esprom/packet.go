package esprom

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Command opcodes ([LDR] ESP_CMDS). Only those the ROM answers are used.
const (
	opFlashBegin     = 0x02
	opFlashData      = 0x03
	opFlashEnd       = 0x04
	opSync           = 0x08
	opWriteReg       = 0x09
	opReadReg        = 0x0A
	opSPISetParams   = 0x0B
	opSPIAttach      = 0x0D
	opReadFlashSlow  = 0x0E
	opChangeBaudrate = 0x0F
	opFlashDeflBegin = 0x10
	opFlashDeflData  = 0x11
	opFlashDeflEnd   = 0x12
	opSPIFlashMD5    = 0x13
	opMemBegin       = 0x05
	opMemEnd         = 0x06
	opMemData        = 0x07
	opReadFlash      = 0xD2 // the stub's
)

var opNames = map[byte]string{
	opFlashBegin: "FLASH_BEGIN", opFlashData: "FLASH_DATA", opFlashEnd: "FLASH_END",
	opSync: "SYNC", opWriteReg: "WRITE_REG", opReadReg: "READ_REG",
	opSPISetParams: "SPI_SET_PARAMS", opSPIAttach: "SPI_ATTACH",
	opReadFlashSlow: "READ_FLASH_SLOW", opChangeBaudrate: "CHANGE_BAUDRATE",
	opFlashDeflBegin: "FLASH_DEFL_BEGIN", opFlashDeflData: "FLASH_DEFL_DATA",
	opFlashDeflEnd: "FLASH_DEFL_END", opSPIFlashMD5: "SPI_FLASH_MD5",
	opMemBegin: "MEM_BEGIN", opMemData: "MEM_DATA", opMemEnd: "MEM_END", opReadFlash: "READ_FLASH",
}

func opName(op byte) string {
	if n, ok := opNames[op]; ok {
		return n
	}
	return fmt.Sprintf("command 0x%02x", op)
}

// Checksum is the ROM's data checksum: 0xEF XORed with every data byte. Only
// FLASH_DATA, FLASH_DEFL_DATA and MEM_DATA carry it, over their data after
// the 16-byte block header.
func Checksum(data []byte) uint32 {
	s := byte(0xEF)
	for _, c := range data {
		s ^= c
	}
	return uint32(s)
}

// Request builds a command packet: direction 0x00, opcode, u16 data length,
// u32 checksum (0 where the ROM ignores it), data. It is not SLIP-framed.
func Request(op byte, data []byte, chk uint32) []byte {
	p := make([]byte, 8, 8+len(data))
	p[1] = op
	binary.LittleEndian.PutUint16(p[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(p[4:], chk)
	return append(p, data...)
}

// Response is one answer from the ROM, SLIP framing removed.
type Response struct {
	Op    byte   // the command it answers
	Value uint32 // READ_REG's result; SYNC's 0x20120707
	Data  []byte // payload then status bytes
}

// The status trailer: the ESP32 ROM sends status, error, 2 reserved bytes;
// the flasher stub (and the ESP8266 ROM) status and error only (esptool
// targets/esp32.py: ESP32StubLoader.STATUS_BYTES_LENGTH = 2).
const (
	statusLen     = 4
	stubStatusLen = 2
)

// ErrBadResponse: a frame that is not a ROM response.
var ErrBadResponse = errors.New("not a ROM response")

// ParseResponse reads a frame as a response: direction 0x01, opcode, u16
// size, u32 value, then size bytes of data. Frames shorter than the header,
// with another direction or a size that disagrees with the frame are
// rejected (esptool skips them the same way).
func ParseResponse(frame []byte) (Response, error) {
	if len(frame) < 8 {
		return Response{}, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header", ErrBadResponse, len(frame))
	}
	if frame[0] != 0x01 {
		return Response{}, fmt.Errorf("%w: direction byte 0x%02x", ErrBadResponse, frame[0])
	}
	size := int(binary.LittleEndian.Uint16(frame[2:]))
	if size != len(frame)-8 {
		return Response{}, fmt.Errorf("%w: size field %d, %d bytes of data", ErrBadResponse, size, len(frame)-8)
	}
	return Response{Op: frame[1], Value: binary.LittleEndian.Uint32(frame[4:]), Data: frame[8:]}, nil
}

// status splits the ROM's 4 status bytes off the data. esptool reads the
// status and error as the first two of the last 4 bytes ([LDR] check_command).
func (r Response) status(trailer int) (payload []byte, st, code byte, err error) {
	if len(r.Data) < trailer {
		return nil, 0, 0, fmt.Errorf("%w: %s answer has %d status bytes, want %d", ErrBadResponse, opName(r.Op), len(r.Data), trailer)
	}
	n := len(r.Data) - trailer
	return r.Data[:n], r.Data[n], r.Data[n+1], nil
}

// ROM error codes ([PROTO] "ROM Loader Errors").
var romErrors = map[byte]string{
	0x05: "invalid message (parameters or length field)",
	0x06: "failed to act on the message",
	0x07: "checksum error in the packet",
	0x08: "flash write error (read-back check failed)",
	0x09: "flash read error",
	0x0A: "flash read length error (request too long)",
	0x0B: "deflate error in the compressed data",
}

// ROMError is a command the ROM answered with status 1: the error byte says why.
type ROMError struct {
	Port string
	Op   byte
	Code byte
}

func (e *ROMError) Error() string {
	why, ok := romErrors[e.Code]
	if !ok {
		why = "unknown error"
	}
	return fmt.Sprintf("the ROM bootloader on %s refused %s: %s (error 0x%02x)", e.Port, opName(e.Op), why, e.Code)
}

func (e *ROMError) Is(target error) bool { return target == ErrRefused }
