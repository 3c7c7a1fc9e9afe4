package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
)

func newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Manage the AMIs phoenix deploys",
	}
	cmd.AddCommand(newPruneCommand())
	return cmd
}

type pruneOptions struct {
	targetOptions
	Family string
	Keep   int
	DryRun bool
}

func (o *pruneOptions) AddFlags(cmd *cobra.Command) {
	o.addAccessFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Family, "family", "", "the image family: names NAME, NAME-…, NAME_…, NAME.…, NAME/…, or the tag phoenix:family=NAME (required)")
	f.IntVar(&o.Keep, "keep", 0, "how many of the family's newest available images to keep, at least 1 (required)")
	f.BoolVar(&o.DryRun, "dry-run", false, "show what would be deregistered and deleted, changing nothing")
}

func newPruneCommand() *cobra.Command {
	var opts pruneOptions
	cmd := &cobra.Command{
		Use:   "prune [ENVIRONMENT] --family NAME --keep N [--dry-run]",
		Short: "Deregister a family's old AMIs and delete their snapshots, keeping the newest N and those in use",
		Long: `Deregister the older AMIs of a family that this account owns in the region
(of an environment in phoenix.hcl, or --region), and delete their EBS
snapshots. Kept, whatever their age:

  - the newest N available images of the family (--keep N, at least 1);
  - the image of the launch template version (or launch configuration) an
    Auto Scaling group uses, $Default and $Latest resolved to their number;
  - the image of the version an unfinished instance refresh moves to;
  - the image of the version a phoenix-made version in use replaced: where
    phoenix rollback returns;
  - the image of any instance that is not terminated;
  - pending images, and an image sharing an EBS snapshot with a kept one.

The family: images whose name is NAME or starts with NAME followed by "-",
"_", "." or "/" (web matches web-1700000000 and web/2, not webapp-1), and
images tagged phoenix:family=NAME. A NAME with * or ? is a pattern for the
whole name (and the tag) instead, as EC2's name filter reads it: web-2025*.

Each image gets a line saying keep (and why) or deregister (and its
snapshots), then a summary. --dry-run prints the same and changes nothing.

Exit codes: 0 done, 1 some images or snapshots could not be removed (each
is reported; the rest were), 3 refused before changing anything.`,
		Example: `  phoenix images prune staging --family web --keep 3 --dry-run
  phoenix images prune --region eu-west-1 --family web --keep 5 --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd.Context(), opts, args, cmd.OutOrStdout())
		},
	}
	opts.AddFlags(cmd)
	return cmd
}

func runPrune(ctx context.Context, opts pruneOptions, args []string, out io.Writer) error {
	p, err := newPrinter(&opts.targetOptions, out)
	if err != nil {
		return err
	}
	po := deployer.PruneOptions{Family: opts.Family, Keep: opts.Keep, DryRun: opts.DryRun}
	if errs := po.Validate(); len(errs) > 0 {
		for i, err := range errs {
			var se *deployer.SettingError
			if errors.As(err, &se) {
				errs[i] = fmt.Errorf("%w (%s)", err, flagName(se.Setting))
			}
		}
		return refused("%w", errors.Join(errs...))
	}
	_, settings, where, err := environment(args, &opts.targetOptions)
	if err != nil {
		return err
	}
	cfg, err := loadAWS(ctx, settings, where)
	if err != nil {
		return err
	}
	po.Region = cfg.Region
	res, err := deployer.PruneImages(ctx, deployer.NewClients(cfg), po)
	if deployer.OutcomeOf(err) != deployer.Refused {
		p.Prune(res)
	}
	return err
}
