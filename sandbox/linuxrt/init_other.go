//go:build !linux

package linuxrt

// Init is a no-op on platforms other than Linux.
func Init() {}

// InitCalled reports false: nothing boots on platforms other than Linux.
func InitCalled() bool { return false }
