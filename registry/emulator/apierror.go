package emulator

import "fmt"

// apiError is an error the emulated cloud answers with: a vendor error code
// (e.g. "ResourceNotFound.DeviceNotExist") and a message for humans.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}
