//go:build !linux

package linuxrt

// Init is a no-op on platforms other than Linux.
func Init() {}
