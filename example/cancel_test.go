package example

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// cancelTemplate bakes an AMI in us-east-1 without connecting (the sim
// runtime has no sshd), copies it to eu-west-1, sets imds_support on both
// and deprecates both: every mutating step of phoenix-ebs runs.
const cancelTemplate = `
packer {
  required_plugins {
    phoenix = {
      source  = "github.com/immutable-infra/phoenix"
      version = ">= 0.1.0"
    }
  }
}

variable "endpoint" {
  type = string
}

source "phoenix-ebs" "cancel" {
  region   = "us-east-1"
  endpoint = var.endpoint
  source_ami_filter {
    owners      = ["136693071363"]
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type   = "t3.micro"
  communicator    = "none"
  ami_name        = "cancel-{{timestamp}}"
  ami_regions     = ["eu-west-1"]
  deprecate_after = "24h"
  poll_interval   = "20ms"
}

build {
  sources = ["source.phoenix-ebs.cancel"]
}
`

// after matches the first call of action (in region, when not empty) that
// comes after a call of prev ("" matches from the start).
func after(prev, action, region string) func(r, s, a string) bool {
	seen := prev == ""
	return func(r, _, a string) bool {
		if a == prev {
			seen = true
			return false
		}
		return seen && a == action && (region == "" || r == region)
	}
}

// A Ctrl-C at any point of a phoenix-ebs build, delivered by the real
// Packer binary to the real plugin process, leaves nothing in any region.
// The sandbox holds the chosen call until the signal has made the plugin
// give up on it, then carries it out, as AWS does with a request it has
// received: the build must find and remove what that call made although
// it never saw the answer.
func TestPackerBuildInterruptedAtEachStepLeavesNothing(t *testing.T) {
	p := newPackerEnv(t)
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "cancel.pkr.hcl")
	if err := os.WriteFile(tmpl, []byte(cancelTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each mutating call is carried out at once and its answer held (AWS
	// did the work, the plugin never hears of it); each wait is held
	// before the sandbox answers it.
	//
	// Each case checks it hit the step it names: the held call is the
	// action named, and the last line the build printed before Packer
	// said it was cancelling is that step's.
	cases := []struct {
		name   string
		match  func(r, s, a string) bool
		answer bool
		signal syscall.Signal
		action string // the held call's
		step   string // how the build's last line starts
	}{
		{"RunInstances", after("", "RunInstances", ""), true, syscall.SIGINT, "RunInstances", "Launching a t3.micro build instance"},
		{"wait for running", after("RunInstances", "DescribeInstances", ""), false, syscall.SIGINT, "DescribeInstances", "Instance i-"},
		{"StopInstances", after("", "StopInstances", ""), true, syscall.SIGINT, "StopInstances", "Stopping the build instance"},
		{"wait for stopped", after("StopInstances", "DescribeInstances", ""), false, syscall.SIGINT, "DescribeInstances", "Stopping the build instance"},
		{"CreateImage", after("", "CreateImage", ""), true, syscall.SIGINT, "CreateImage", "Creating AMI cancel-"},
		{"wait for the AMI", after("CreateImage", "DescribeImages", "us-east-1"), false, syscall.SIGINT, "DescribeImages", "AMI ami-"},
		{"CopyImage", after("", "CopyImage", ""), true, syscall.SIGINT, "CopyImage", "Copying ami-"},
		{"wait for the copy", after("CopyImage", "DescribeImages", "eu-west-1"), false, syscall.SIGINT, "DescribeImages", "Copy ami-"},
		{"ModifyImageAttribute", after("", "ModifyImageAttribute", ""), true, syscall.SIGINT, "ModifyImageAttribute", "Setting imds_support = v2.0"},
		{"EnableImageDeprecation in the copy region", after("", "EnableImageDeprecation", "eu-west-1"), true, syscall.SIGINT, "EnableImageDeprecation", "Deprecating ami-"},
		// CI runners and timeouts send SIGTERM to the process itself.
		{"CopyImage, SIGTERM to packer's pid", after("", "CopyImage", ""), true, syscall.SIGTERM, "CopyImage", "Copying ami-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := sandboxtest.Start(t)
			holdFn := sb.HoldCall
			if tc.answer {
				holdFn = sb.HoldAnswer
			}
			hold := holdFn(tc.match)
			t.Cleanup(hold.Release)
			out, code := p.interruptedBuild(t, sb, tmpl, hold, tc.signal)
			sig := "interrupt"
			if tc.signal == syscall.SIGTERM {
				sig = "terminated"
			}
			for _, want := range []string{
				"Cancelling build after receiving " + sig,
				"Build 'phoenix-ebs.cancel' errored after",
				"Cleanly cancelled builds after being interrupted.",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("packer output lacks %q", want)
				}
			}
			if code != 1 {
				t.Errorf("packer exited %d, want 1", code)
			}
			if hold.Action != tc.action {
				t.Errorf("held %s, want %s", hold.Action, tc.action)
			}
			if last := lastStep(out); !strings.HasPrefix(last, tc.step) {
				t.Errorf("the build's last step before the signal: %q, want one starting %q", last, tc.step)
			}
			waitEmptyInventory(t, sb)
			if t.Failed() {
				t.Logf("packer output:\n%s", out)
			}
		})
	}
}

// startPacker starts packer with args in its own process group, its
// output in out; exited closes when it has exited. The test's cleanup
// kills the group (the plugin with it) and waits.
func (p *packerEnv) startPacker(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(p.packer, args...)
	cmd.Dir = p.root
	cmd.Env = append(os.Environ(), p.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	return cmd, out, exited
}

// interruptedBuild runs packer build, sends sig once the hold is reached,
// waits until the plugin has given up on the held call, releases it, and
// returns packer's output and exit code. SIGINT goes to packer's process
// group, as a terminal's Ctrl-C does (Packer's outer process ignores
// SIGINT and leaves it to the group); SIGTERM goes to packer's pid.
func (p *packerEnv) interruptedBuild(t *testing.T, sb *sandbox.Sandbox, tmpl string, hold *sandbox.Hold, sig syscall.Signal) (string, int) {
	t.Helper()
	cmd, out, exited := p.startPacker(t, "build", "-var", "endpoint="+sb.URL(), tmpl)
	select {
	case <-hold.Reached():
	case <-exited:
		t.Fatalf("packer exited before the held call:\n%s", out.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("the build never made the held call:\n%s", out.String())
	}
	// Something exists to clean up by then: the case is not vacuous.
	if len(sb.Inventory()) == 0 {
		t.Errorf("nothing in the sandbox when %s in %s was held", hold.Action, hold.Region)
	}
	target := cmd.Process.Pid
	if sig == syscall.SIGINT {
		target = -target
	}
	if err := syscall.Kill(target, sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-hold.ClientGone():
	case <-time.After(30 * time.Second):
		t.Errorf("the plugin kept waiting for %s in %s 30s after %s", hold.Action, hold.Region, sig)
	}
	hold.Release()
	select {
	case <-exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("packer did not exit 2m after %s:\n%s", sig, out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// waitEmptyInventory waits until nothing is left in the sandbox:
// terminated instances take their volumes along a moment later.
func waitEmptyInventory(t *testing.T, sb *sandbox.Sandbox) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && len(sb.Inventory()) > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// syncBuffer is a bytes.Buffer that a process's stdout and stderr may
// write to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// lastStep is the last line the build printed before Packer said it was
// cancelling: the step the signal reached.
func lastStep(out string) string {
	const prefix = "==> phoenix-ebs.cancel: "
	last := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Cancelling build") {
			break
		}
		if i := strings.Index(l, prefix); i >= 0 {
			last = l[i+len(prefix):]
		}
	}
	return last
}
