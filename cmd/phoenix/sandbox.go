package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

type sandboxOptions struct {
	Listen    string
	Runtime   string
	StateDir  string
	TimeScale float64
	// Accounts are KEY=ACCOUNT pairs: the access key acts in that account.
	Accounts []string
	// TrustRoles are ROLE_ARN=ACCOUNT pairs: the account may assume the
	// role.
	TrustRoles []string
	// Organizations are ACCOUNT=ORG_ARN[,OU_ARN...] pairs: the account's
	// organization and OUs, for AMIs shared by organization or OU.
	Organizations []string
}

func (o *sandboxOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:4566", "loopback address and port to serve on")
	f.StringVar(&o.Runtime, "runtime", "sim", "instance runtime: sim (state machines, runs anywhere) or linux (real Debian 12 instances; root on Linux)")
	f.StringVar(&o.StateDir, "state-dir", "", "directory for the sandbox's files (default: a temporary directory)")
	f.Float64Var(&o.TimeScale, "time-scale", 1, "multiply every AWS-like duration by this factor (0.01 runs 100x faster)")
	f.StringArrayVar(&o.Accounts, "account", nil, "ACCESS_KEY=ACCOUNT_ID: requests signed with that access key act in that account (repeatable; other keys act in "+sandbox.AccountID+")")
	f.StringArrayVar(&o.Organizations, "organization", nil, "ACCOUNT_ID=ORG_ARN[,OU_ARN...]: the account's organization and OUs, outermost first, for AMIs shared with an organization or OU (repeatable)")
	f.StringArrayVar(&o.TrustRoles, "trust-role", nil, "ROLE_ARN=ACCOUNT_ID: principals of that account may assume the role (repeatable; a role trusts nobody otherwise)")
}

func newSandboxCommand() *cobra.Command {
	var opts sandboxOptions
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local AWS-compatible cloud on a loopback address",
		Long: `Run a local AWS-compatible cloud (EC2, Auto Scaling, ELBv2, KMS, STS) on a
loopback address until interrupted. Point the AWS SDK or CLI at it with
AWS_ENDPOINT_URL; any access key is accepted and acts in account
` + sandbox.AccountID + ` unless --account maps it to another account; a role may be
assumed only by an account --trust-role names.
See docs/sandbox.md.

Runtimes:
  sim    instances are state machines; health checks follow the image's
         sandbox:health tag. Runs anywhere.
  linux  (root on Linux) instances are real Debian 12 systems in namespaces on
         overlayfs, at private IPs in 127.31.0.0/16 with sshd on port 22, the
         key pair's key for user admin and user data run at boot; CreateImage
         freezes real file layers; health checks are real HTTP or TCP; each load
         balancer is a reverse proxy on its own address (127.10.x.y, also its
         DNSName). The base root file system is built once with debootstrap and
         cached in /var/cache/phoenix/rootfs (PHOENIX_ROOTFS_CACHE). Everything
         the runtime started is removed on exit (SIGINT/SIGTERM included), and
         leftovers of a crashed run at the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSandbox(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runSandbox(ctx context.Context, opts sandboxOptions, out io.Writer) error {
	if err := sandbox.CheckLoopback(opts.Listen); err != nil {
		return refused("--listen: %w", err)
	}
	if opts.TimeScale <= 0 {
		return refused("--time-scale %v: must be greater than 0", opts.TimeScale)
	}
	accounts, err := pairs("--account", "ACCESS_KEY=ACCOUNT_ID", opts.Accounts, sandbox.CheckAccount)
	if err != nil {
		return err
	}
	trust, err := pairs("--trust-role", "ROLE_ARN=ACCOUNT_ID", opts.TrustRoles, sandbox.CheckTrustRole)
	if err != nil {
		return err
	}
	orgs, err := pairs("--organization", "ACCOUNT_ID=ORG_ARN[,OU_ARN...]", opts.Organizations, func(account, arns string) error {
		org, ous, _ := strings.Cut(arns, ",")
		return sandbox.CheckOrganization(account, org, splitList(ous)...)
	})
	if err != nil {
		return err
	}
	sb, err := sandbox.Start(sandbox.Options{
		Listen: opts.Listen, Runtime: opts.Runtime, StateDir: opts.StateDir, TimeScale: opts.TimeScale, Log: out,
	})
	if err != nil {
		return refused("starting sandbox: %w", err)
	}
	for _, p := range accounts {
		if err := sb.AddAccount(p[0], p[1]); err != nil {
			sb.Close()
			return refused("--account %s=%s: %w", p[0], p[1], err)
		}
		fmt.Fprintf(out, "sandbox: access key %s acts in account %s\n", p[0], p[1])
	}
	for _, p := range trust {
		if err := sb.TrustRole(p[0], p[1]); err != nil {
			sb.Close()
			return refused("--trust-role %s=%s: %w", p[0], p[1], err)
		}
		fmt.Fprintf(out, "sandbox: account %s may assume %s\n", p[1], p[0])
	}
	for _, p := range orgs {
		org, ous, _ := strings.Cut(p[1], ",")
		if err := sb.JoinOrganization(p[0], org, splitList(ous)...); err != nil {
			sb.Close()
			return refused("--organization %s=%s: %w", p[0], p[1], err)
		}
		fmt.Fprintf(out, "sandbox: account %s is in %s\n", p[0], p[1])
	}
	fmt.Fprintf(out, "Use it with:\n  export AWS_ENDPOINT_URL=%s AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_REGION=us-east-1\n", sb.URL())
	fmt.Fprintf(out, "Test hooks: %s/_sandbox/inventory, /_sandbox/calls, /_sandbox/faults, /_sandbox/timing, /_sandbox/load-balancers, /_sandbox/images/<ami>/files?path=\n", sb.URL())
	<-ctx.Done()
	fmt.Fprintln(out, "sandbox: stopping")
	return sb.Close()
}

// pairs splits and checks each NAME=VALUE of a repeatable flag.
func pairs(flag, form string, values []string, check func(name, value string) error) ([][2]string, error) {
	var out [][2]string
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" || val == "" {
			return nil, refused("%s %q: want %s", flag, v, form)
		}
		if err := check(k, val); err != nil {
			return nil, refused("%s %q: %w", flag, v, err)
		}
		out = append(out, [2]string{k, val})
	}
	return out, nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
