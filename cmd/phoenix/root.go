package main

import (
	"github.com/spf13/cobra"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "phoenix",
		Short:         "Deploy, promote and roll back immutable AMIs on AWS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(newDeployCommand(), newPromoteCommand(), newRollbackCommand(), newPlanCommand(), newStatusCommand(), newHistoryCommand(), newVersionCommand(), newSandboxCommand())
	root.AddCommand(newImagesCommand())
	refuseBadArguments(root)
	return root
}
