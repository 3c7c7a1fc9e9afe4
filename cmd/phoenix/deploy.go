package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/printer"
)

type deployOptions struct {
	targetOptions
	rollingOptions
	AMI string
}

func (o *deployOptions) AddFlags(cmd *cobra.Command) {
	o.targetOptions.AddFlags(cmd)
	o.rollingOptions.AddFlags(cmd)
	cmd.Flags().StringVar(&o.AMI, "ami", "", "the AMI to deploy (ami-…, or resolve:ssm:NAME[:VERSION|:LABEL] for the AMI an SSM parameter names), in the target's region")
}

func newDeployCommand() *cobra.Command {
	var opts deployOptions
	cmd := &cobra.Command{
		Use:   "deploy [ENVIRONMENT] --ami AMI",
		Short: "Deploy an AMI to an environment, rolling or blue-green, gated on load balancer health",
		Long: `Deploy an AMI to the target of an environment in phoenix.hcl (phoenix deploy
prod --ami ami-…) or named by flags (phoenix deploy --region us-east-1 --asg
web --ami ami-…).

rolling (the default): an instance refresh of the group to a new launch
template version with the AMI; it succeeds when the refresh has succeeded
and every target of the group's target groups is healthy on the new AMI.

blue-green (strategy "blue-green", or --peer-asg and --listener): the idle
colour comes up on the AMI at the live colour's capacity, pinned, is
health-checked at weight 0, then traffic moves in --steps with a bake each;
the old colour scales to zero or stays warm for --keep-old-for.

A deploy that fails is rolled back.

Exit codes: 0 succeeded, 1 failed and rolled back, 2 rollback failed (needs a
person), 3 refused before changing anything.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDeploy(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runDeploy(ctx context.Context, opts deployOptions, args []string, out io.Writer) error {
	p, err := newPrinter(&opts.targetOptions, out)
	if err != nil {
		return err
	}
	if opts.AMI == "" {
		return refused("--ami: say which AMI to deploy")
	}
	sel, err := selectTargets(ctx, args, &opts.targetOptions, &opts.rollingOptions, p)
	if err != nil {
		return err
	}
	if sel.rollout() {
		return runRollout(ctx, sel, deployer.PromoteEnd{}, opts.AMI, 0, p)
	}
	for _, d := range sel.Deployers {
		res, err := d.Run(ctx, opts.AMI)
		p.Result(res)
		if err != nil {
			return err
		}
	}
	return nil
}

// runRollout deploys to the selection's targets wave by wave: from, or
// when it has no Deployer the AMI ami of the environment's own region,
// copied first to every target's region.
func runRollout(ctx context.Context, sel *selection, from deployer.PromoteEnd, ami string, copyTimeout time.Duration, p printer.Printer) error {
	if from.Deployer == nil {
		if !strings.HasPrefix(ami, "ami-") {
			return refused("--ami %s: environment %q deploys to several regions (or in waves), so --ami takes the id of an AMI in its region %s, which phoenix copies to the others", ami, sel.Env.Name, sel.AWS.Region)
		}
		from = deployer.PromoteEnd{Environment: sel.Env.Name, Config: sel.AWS,
			Deployer: &deployer.Deployer{Clients: deployer.NewClients(sel.AWS), Target: deployer.Target{Name: sel.Env.Name, Region: sel.AWS.Region}}}
	} else {
		ami = ""
	}
	r := &deployer.Rollout{From: from, Image: ami, Waves: sel.waves(), OnFailure: sel.Env.OnWaveFailure, CopyTimeout: copyTimeout, Events: p.Event}
	res, err := r.Run(ctx)
	if res != nil {
		p.Rollout(res)
	}
	return err
}

type rollbackOptions struct {
	targetOptions
	rollingOptions
}

func newRollbackCommand() *cobra.Command {
	var opts rollbackOptions
	cmd := &cobra.Command{
		Use:   "rollback [ENVIRONMENT]",
		Short: "Return a target to the AMI it ran before its last deploy",
		Long: `Roll back a target: a refresh in progress is rolled back (or cancelled and
refreshed back); a finished phoenix deploy is undone by a refresh to the
launch template version it replaced. Blue-green: traffic moves back to the
old colour in one call while it is still warm; otherwise the previous AMI
is deployed blue-green; a switch cut short returns to the unpinned colour.
Exit codes: 0 rolled back and healthy,
2 rollback failed, 3 refused (nothing to roll back to, locked, bad input).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRollback(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.targetOptions.AddFlags(cmd)
	opts.rollingOptions.AddFlags(cmd)
	return cmd
}

func runRollback(ctx context.Context, opts rollbackOptions, args []string, out io.Writer) error {
	p, err := newPrinter(&opts.targetOptions, out)
	if err != nil {
		return err
	}
	ds, err := deployers(ctx, args, &opts.targetOptions, &opts.rollingOptions, p)
	if err != nil {
		return err
	}
	for _, d := range ds {
		res, err := d.Rollback(ctx)
		p.Result(res)
		if err != nil {
			return err
		}
	}
	return nil
}

type planOptions struct {
	targetOptions
	rollingOptions
	AMI string
}

func newPlanCommand() *cobra.Command {
	var opts planOptions
	cmd := &cobra.Command{
		Use:   "plan [ENVIRONMENT] --ami AMI",
		Short: "Show what a deploy would change, without changing anything",
		Long: `Check every precondition of a deploy (the AMI is in the region, available and
encrypted when required; the group exists; options are in range; nobody
holds the lock) and show what it would change. Only reads: exit 3 when the
deploy would be refused.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.targetOptions.AddFlags(cmd)
	opts.rollingOptions.AddFlags(cmd)
	cmd.Flags().StringVar(&opts.AMI, "ami", "", "the AMI a deploy would roll out (ami-… or resolve:ssm:NAME[:VERSION|:LABEL])")
	return cmd
}

func runPlan(ctx context.Context, opts planOptions, args []string, out io.Writer) error {
	p, err := newPrinter(&opts.targetOptions, out)
	if err != nil {
		return err
	}
	if opts.AMI == "" {
		return refused("--ami: say which AMI to plan for")
	}
	ds, err := deployers(ctx, args, &opts.targetOptions, &opts.rollingOptions, p)
	if err != nil {
		return err
	}
	for _, d := range ds {
		pl, err := d.Plan(ctx, opts.AMI)
		if err != nil {
			return err
		}
		p.Plan(pl)
	}
	return nil
}

type statusOptions struct {
	targetOptions
}

func newStatusCommand() *cobra.Command {
	var opts statusOptions
	cmd := &cobra.Command{
		Use:   "status [ENVIRONMENT]",
		Short: "Show a target's launch template, refresh, both colours (blue-green), target health, AMIs in use and lock",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runStatus(ctx context.Context, opts statusOptions, args []string, out io.Writer) error {
	p, err := newPrinter(&opts.targetOptions, out)
	if err != nil {
		return err
	}
	ds, err := deployers(ctx, args, &opts.targetOptions, nil, p)
	if err != nil {
		return err
	}
	for _, d := range ds {
		st, err := d.Status(ctx)
		if err != nil {
			return err
		}
		p.Status(st)
	}
	return nil
}

type historyOptions struct {
	targetOptions
	Limit int
}

func newHistoryCommand() *cobra.Command {
	var opts historyOptions
	cmd := &cobra.Command{
		Use:   "history [ENVIRONMENT]",
		Short: "List a target's deploys and rollbacks, newest first: who, when, which AMI, from what, outcome",
		Long: `List the records phoenix keeps of every deploy and rollback of a target that
got past its checks (a refused one changed nothing and is only in its own
output): the SSM parameter /phoenix/history/GROUP in the target's region,
one version per deploy; Parameter Store keeps the last 100.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHistory(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.AddFlags(cmd)
	cmd.Flags().IntVar(&opts.Limit, "limit", 0, "show at most this many records per target (default: all)")
	return cmd
}

func runHistory(ctx context.Context, opts historyOptions, args []string, out io.Writer) error {
	p, err := newPrinter(&opts.targetOptions, out)
	if err != nil {
		return err
	}
	if opts.Limit < 0 {
		return refused("--limit %d: say how many records to show (0 for all)", opts.Limit)
	}
	ds, err := deployers(ctx, args, &opts.targetOptions, nil, p)
	if err != nil {
		return err
	}
	for _, d := range ds {
		recs, err := d.History(ctx)
		if err != nil {
			return err
		}
		if opts.Limit > 0 && len(recs) > opts.Limit {
			recs = recs[:opts.Limit]
		}
		p.History(&deployer.History{Target: d.Target.Name, Region: d.Target.Region, Group: d.Target.Group, Parameter: deployer.HistoryPath(d.Target.Group), Records: recs})
	}
	return nil
}
