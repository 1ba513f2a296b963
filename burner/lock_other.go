//go:build !unix

package burner

import "os"

// Without flock, exclusivity rests on the OS (Windows opens COM ports exclusively).
func lockPort(string) (*os.File, error) { return nil, nil }

func unlockPort(*os.File) {}

func isNoDevice(error) bool { return false }
