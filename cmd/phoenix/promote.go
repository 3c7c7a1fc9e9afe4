package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/printer"
)

type promoteOptions struct {
	From         string
	To           string
	Target       string
	Config       string
	Endpoint     string
	Output       string
	PollInterval time.Duration
	CopyTimeout  time.Duration
	GrantKMS     bool
}

func (o *promoteOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.From, "from", "", "the environment whose live, healthy AMI is promoted (e.g. staging)")
	f.StringVar(&o.To, "to", "", "the environment the AMI is deployed to (e.g. prod)")
	f.StringVar(&o.Target, "target", "", "the target, in both environments (default: each environment's only target)")
	f.StringVar(&o.Config, "config", "phoenix.hcl", "the phoenix.hcl file that defines both environments")
	f.StringVar(&o.Endpoint, "endpoint", "", "endpoint URL for every AWS service of both environments, e.g. the phoenix sandbox")
	f.StringVarP(&o.Output, "output", "o", "text", "output format: text or json")
	f.DurationVar(&o.PollInterval, "poll-interval", 0, "mean time between passes, of the copy wait and the deploy (default: the environment's, or 10s)")
	f.BoolVar(&o.GrantKMS, "grant-kms", false, "create the KMS grant Auto Scaling's service-linked role needs for the to environment's key (default: the to environment's grant_kms)")
	f.DurationVar(&o.CopyTimeout, "copy-timeout", deployer.DefaultCopyTimeout, "how long the copy to the to environment's region or account may take to be available")
}

func newPromoteCommand() *cobra.Command {
	var opts promoteOptions
	cmd := &cobra.Command{
		Use:   "promote --from ENVIRONMENT --to ENVIRONMENT",
		Short: "Deploy the AMI that is live and healthy in one environment to another",
		Long: `Read the AMI that the from environment's target serves, refuse unless every
target is healthy on it, bring that exact image to the to environment (the
same id in the same region and account; otherwise an encrypted copy with the
to environment's kms_key_id, its name and tags, found again on a re-run by its
phoenix:promoted-from tag) and deploy it there with the to environment's
strategy. A promotion already done changes nothing.

Exit codes: 0 succeeded (or already live), 1 failed (copy failed or
interrupted, or the deploy rolled back), 2 rollback failed (needs a person),
3 refused before changing anything.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return refused("promote takes no arguments (%s): name the environments with --from and --to", strings.Join(args, " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPromote(cmd.Context(), opts, cmd.OutOrStdout())
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runPromote(ctx context.Context, opts promoteOptions, out io.Writer) error {
	// Both environments are read as phoenix deploy reads one.
	side := &targetOptions{Config: opts.Config, Target: opts.Target, Endpoint: opts.Endpoint, Output: opts.Output, PollInterval: opts.PollInterval}
	p, err := newPrinter(side, out)
	if err != nil {
		return err
	}
	switch {
	case opts.From == "":
		return refused("--from: say which environment's live AMI to promote (e.g. --from staging)")
	case opts.To == "":
		return refused("--to: say which environment to promote to (e.g. --to prod)")
	case opts.From == opts.To:
		return refused("--from and --to are both %q: promote brings an AMI from one environment to another", opts.From)
	case opts.CopyTimeout <= 0:
		return refused("--copy-timeout %s must be positive", opts.CopyTimeout)
	case opts.PollInterval < 0:
		return refused("--poll-interval %s must not be negative", opts.PollInterval)
	}
	from, err := promoteEnd(ctx, opts.From, side, p)
	if err != nil {
		return fmt.Errorf("--from %s: %w", opts.From, err)
	}
	if opts.Target == "" {
		// Every target of an environment with several, wave by wave.
		sel, err := selectTargets(ctx, []string{opts.To}, side, nil, p)
		if err != nil {
			return fmt.Errorf("--to %s: %w", opts.To, err)
		}
		if len(sel.Deployers) > 1 {
			for _, d := range sel.Deployers {
				d.GrantKMS = d.GrantKMS || opts.GrantKMS
				d.PollInterval = orDuration(opts.PollInterval, d.PollInterval)
			}
			return runRollout(ctx, sel, from, "", opts.CopyTimeout, p)
		}
	}
	to, err := promoteEnd(ctx, opts.To, side, p)
	if err != nil {
		return fmt.Errorf("--to %s: %w", opts.To, err)
	}
	if opts.GrantKMS {
		to.Deployer.GrantKMS = true
	}
	pr := &deployer.Promotion{From: from, To: to, CopyTimeout: opts.CopyTimeout, PollInterval: opts.PollInterval, Events: p.Event}
	res, err := pr.Run(ctx)
	if res != nil {
		p.Result(res)
	}
	return err
}

// promoteEnd builds one environment's side of a promotion, as phoenix
// deploy builds its Deployer.
func promoteEnd(ctx context.Context, env string, o *targetOptions, p printer.Printer) (deployer.PromoteEnd, error) {
	sel, err := selectTargets(ctx, []string{env}, o, nil, p)
	if err != nil {
		return deployer.PromoteEnd{}, err
	}
	if len(sel.Deployers) != 1 {
		var names []string
		for _, t := range sel.Env.Targets {
			names = append(names, t.Name)
		}
		return deployer.PromoteEnd{}, refused("environment %q has several targets (%s): choose one with --target", env, strings.Join(names, ", "))
	}
	return deployer.PromoteEnd{Environment: env, Deployer: sel.Deployers[0], Config: sel.AWS, KMSKeyID: sel.Env.KMSKeyID}, nil
}

func orDuration(d, alt time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return alt
}
