package example

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// cancelSSHTemplate bakes over SSH on the linux runtime: phoenix-ebs makes
// a temporary key pair (imported: the private key never leaves the
// machine) and security group, Packer connects to the
// instance (on ssh_port) and runs a shell provisioner that says it has
// started and then waits.
const cancelSSHTemplate = `
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

variable "ssh_port" {
  type    = number
  default = 22
}

source "phoenix-ebs" "cancel" {
  region   = "us-east-1"
  endpoint = var.endpoint
  source_ami_filter {
    owners      = ["136693071363"]
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type = "t3.micro"
  ssh_username  = "admin"
  ssh_port      = var.ssh_port
  ssh_timeout   = "10m"
  ami_name      = "cancel-ssh-{{timestamp}}"
  poll_interval = "50ms"
}

build {
  sources = ["source.phoenix-ebs.cancel"]

  provisioner "shell" {
    inline = ["echo provisioner started on $(hostname)", "sleep 600"]
  }
}
`

// A Ctrl-C at the steps of a build that connects over SSH, delivered by
// the real Packer to the real plugin on the linux runtime, leaves nothing:
// not the temporary key pair or security group (whose answers the plugin
// never got), not the instance it was connecting to or provisioning.
// Each case checks it hit the step it names: the held call's action, or
// the line Packer printed for the step.
func TestPackerBuildOverSSHInterruptedAtEachStepLeavesNothing(t *testing.T) {
	testenv.RequireRoot(t)
	p := newPackerEnv(t)
	tmpl := filepath.Join(t.TempDir(), "cancel-ssh.pkr.hcl")
	if err := os.WriteFile(tmpl, []byte(cancelSSHTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// action is the call whose answer is held, or "" to interrupt
		// once Packer printed line.
		action, line string
		// sshPort 2222: nothing listens there, so Packer keeps waiting
		// for SSH.
		sshPort string
	}{
		{name: "key pair", action: "ImportKeyPair"},
		{name: "security group", action: "CreateSecurityGroup"},
		{name: "SSH connect", line: "Waiting for SSH to become available", sshPort: "2222"},
		{name: "provisioner", line: "provisioner started on"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sb := sandboxtest.StartWith(t, sandbox.Options{Runtime: "linux", TimeScale: 0.05})
			var hold *sandbox.Hold
			if tc.action != "" {
				action := tc.action
				hold = sb.HoldAnswer(func(_, _, a string) bool { return a == action })
				t.Cleanup(hold.Release)
			}
			args := []string{"build", "-var", "endpoint=" + sb.URL()}
			if tc.sshPort != "" {
				args = append(args, "-var", "ssh_port="+tc.sshPort)
			}
			cmd, out, exited := p.startPacker(t, append(args, tmpl)...)

			reached := func() <-chan struct{} {
				if hold != nil {
					return hold.Reached()
				}
				c := make(chan struct{})
				go func() {
					for !strings.Contains(out.String(), tc.line) {
						select {
						case <-exited:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
					close(c)
				}()
				return c
			}()
			select {
			case <-reached:
			case <-exited:
				t.Fatalf("packer exited before the step:\n%s", out.String())
			case <-time.After(5 * time.Minute):
				t.Fatalf("the build never reached the step:\n%s", out.String())
			}
			if hold != nil && hold.Action != tc.action {
				t.Errorf("held %s, want %s", hold.Action, tc.action)
			}
			if len(sb.Inventory()) == 0 {
				t.Errorf("nothing in the sandbox at the %s step: the case would prove nothing", tc.name)
			}
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if hold != nil {
				select {
				case <-hold.ClientGone():
				case <-time.After(30 * time.Second):
					t.Errorf("the plugin kept waiting for %s 30s after SIGINT", tc.action)
				}
				hold.Release()
			}
			select {
			case <-exited:
			case <-time.After(3 * time.Minute):
				t.Fatalf("packer did not exit 3m after SIGINT:\n%s", out.String())
			}
			text := out.String()
			for _, want := range []string{"Cancelling build after receiving interrupt", "Build 'phoenix-ebs.cancel' errored after", "Cleanly cancelled builds after being interrupted."} {
				if !strings.Contains(text, want) {
					t.Errorf("packer output lacks %q", want)
				}
			}
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("packer exited %d, want 1", code)
			}
			deadline := time.Now().Add(2 * time.Minute)
			for time.Now().Before(deadline) && len(sb.Inventory()) > 0 {
				time.Sleep(50 * time.Millisecond)
			}
			sandboxtest.RequireEmptyInventory(t, sb)
			if t.Failed() {
				t.Logf("packer output:\n%s", text)
			}
		})
	}
}
