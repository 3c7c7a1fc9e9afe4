// Command phoenix deploys, promotes and rolls back AMIs, and runs the
// local sandbox cloud. Exit codes: 0 succeeded, 1 failed, 2 rollback
// failed (needs a person), 3 refused before changing anything.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
)

// Exit codes, documented in docs/deployer.md; a *deployer.Error carries
// its own (deployer.Outcome values are the same numbers).
const (
	exitOK             = 0
	exitFailed         = 1
	exitRollbackFailed = 2
	exitRefused        = 3
)

// refusedError marks errors found before anything was changed: bad input,
// failed preconditions.
type refusedError struct{ err error }

func (e refusedError) Error() string { return e.err.Error() }
func (e refusedError) Unwrap() error { return e.err }

func refused(format string, args ...any) error {
	return refusedError{fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var r refusedError
	if errors.As(err, &r) {
		return exitRefused
	}
	var d *deployer.Error
	if errors.As(err, &d) {
		return int(d.Outcome)
	}
	return exitFailed
}

func main() {
	// The sandbox's linux runtime re-executes this binary as the init of
	// each instance: that must happen before anything else.
	linuxrt.Init()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cmd := newRootCommand()
	err := cmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "phoenix:", err)
	}
	os.Exit(exitCode(err))
}
