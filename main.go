// Command packer-plugin-phoenix is the Packer plugin: the phoenix-ebs
// builder, the phoenix-harden provisioner and the phoenix-deploy
// post-processor.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/immutable-infra/packer-plugin-phoenix/builder/ebs"
	"github.com/immutable-infra/packer-plugin-phoenix/post-processor/deploy"
	"github.com/immutable-infra/packer-plugin-phoenix/provisioner/harden"
	"github.com/immutable-infra/packer-plugin-phoenix/version"
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterBuilder("ebs", new(ebs.Builder))
	pps.RegisterProvisioner("harden", new(harden.Provisioner))
	pps.RegisterPostProcessor("deploy", new(deploy.PostProcessor))
	pps.SetVersion(version.PluginVersion)
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}
