//go:build !linux

package sandbox

import (
	"errors"
	"io"
)

// linuxRuntime exists only on Linux.
type linuxRuntime struct{ simRuntime }

func newLinuxRuntime(*World, string, io.Writer) (*linuxRuntime, error) {
	return nil, errors.New("the linux runtime needs Linux (and root): use --runtime sim")
}

func (*linuxRuntime) openImage(string, []string) (string, func() error, error) {
	return "", nil, errors.New("the linux runtime needs Linux")
}
