// Package ebs is the phoenix-ebs builder: it bakes an EBS-backed AMI whose
// snapshots are encrypted from the first write, tags it with its
// provenance at creation, copies it to more regions in parallel, and
// leaves nothing behind when a build fails or is cancelled.
package ebs

import (
	"context"
	"fmt"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/packer-plugin-sdk/communicator"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/multistep/commonsteps"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

// BuilderID identifies phoenix-ebs artifacts.
const BuilderID = "immutable-infra.phoenix-ebs"

// State bag keys: steps talk only through these.
const (
	stateConfig        = "config"
	stateHook          = "hook" // read by the SDK's StepProvision
	stateUI            = "ui"
	stateClients       = "aws_clients"
	stateSourceImage   = "source_image"
	stateSubnetID      = "subnet_id"
	stateVpcID         = "vpc_id"
	stateKeyPairName   = "key_pair_name"
	stateSecurityGroup = "security_group_ids"
	stateInstance      = "instance"
	stateHardening     = "hardening_report"
	stateAMIs          = "amis" // *amiSet
	stateBuildTime     = "build_time"
)

// Builder is the phoenix-ebs builder.
type Builder struct {
	config Config
	runner multistep.Runner
}

// ConfigSpec returns the HCL2 spec of the configuration.
func (b *Builder) ConfigSpec() hcldec.ObjectSpec { return b.config.FlatMapstructure().HCL2Spec() }

// Prepare validates the configuration and returns the generated data's
// variable names.
func (b *Builder) Prepare(raws ...interface{}) ([]string, []string, error) {
	warnings, err := b.config.Prepare(raws...)
	if err != nil {
		return nil, warnings, err
	}
	generated := []string{"SourceAMI", "SourceAMIName", "SourceAMIOwner", "SourceAMICreationDate", "BuildRegion", "HardeningProfile", "HardeningScore", "AuditLynisIndex", "SSMParameters"}
	return generated, warnings, nil
}

// Run bakes the AMI.
func (b *Builder) Run(ctx context.Context, ui packersdk.Ui, hook packersdk.Hook) (packersdk.Artifact, error) {
	clients, err := newClients(ctx, &b.config)
	if err != nil {
		return nil, err
	}
	state := new(multistep.BasicStateBag)
	state.Put(stateConfig, &b.config)
	state.Put(stateHook, hook)
	state.Put(stateUI, ui)
	state.Put(stateClients, clients)
	state.Put(stateAMIs, newAMISet())

	c := &b.config
	ssh := c.Comm.Type == "ssh"
	steps := []multistep.Step{
		&stepPreValidate{},
		&stepSourceAMI{},
		&stepNetwork{},
		multistep.If(ssh, &stepKeyPair{}),
		multistep.If(ssh, &stepSecurityGroup{}),
		&stepRunInstance{},
		&communicator.StepConnect{
			Config:    &c.Comm,
			Host:      sshHost(c.SSHInterface.SSHInterface),
			SSHConfig: c.Comm.SSHConfigFunc(),
		},
		&commonsteps.StepProvision{},
		multistep.If(ssh, &stepReadHardeningReport{}),
		&stepStopInstance{},
	}
	if !c.SkipCreateAMI {
		steps = append(steps,
			&stepDeregisterExisting{},
			&stepCreateAMI{},
			&stepCopyAMI{},
			&stepImageAttributes{}, // after the copies: they get the same attributes
			&stepDeprecate{},
			&stepPublishSSMParameters{}, // last: a build that fails before it writes no parameter
		)
	}
	b.runner = commonsteps.NewRunner(steps, c.PackerConfig, ui)
	b.runner.Run(ctx, state)

	if rawErr, ok := state.GetOk("error"); ok {
		if err, ok := rawErr.(error); ok {
			return nil, err
		}
		return nil, fmt.Errorf("build failed: %v", rawErr)
	}
	if _, cancelled := state.GetOk(multistep.StateCancelled); cancelled {
		return nil, fmt.Errorf("build was cancelled")
	}
	if _, halted := state.GetOk(multistep.StateHalted); halted {
		return nil, fmt.Errorf("build was halted")
	}
	if c.SkipCreateAMI {
		ui.Say("skip_create_ami is set: no AMI was created")
		return nil, nil
	}
	amis, _ := state.Get(stateAMIs).(*amiSet)
	src, _ := state.Get(stateSourceImage).(*sourceImage)
	return newArtifact(amis, src, clients, state), nil
}

// sshHost picks the address to connect to from the instance.
func sshHost(iface string) func(multistep.StateBag) (string, error) {
	return func(state multistep.StateBag) (string, error) {
		inst, ok := state.Get(stateInstance).(*instanceInfo)
		if !ok || inst == nil {
			return "", fmt.Errorf("no build instance to connect to")
		}
		switch iface {
		case "private_ip":
			return inst.PrivateIP, nil
		case "public_ip":
			if inst.PublicIP == "" {
				return "", fmt.Errorf("ssh_interface = public_ip but instance %s has no public IP address", inst.ID)
			}
			return inst.PublicIP, nil
		case "public_dns":
			return inst.PublicDNS, nil
		case "private_dns":
			return inst.PrivateDNS, nil
		}
		if inst.PublicIP != "" {
			return inst.PublicIP, nil
		}
		return inst.PrivateIP, nil
	}
}
