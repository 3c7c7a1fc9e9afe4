package ebs

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/uuid"
	"golang.org/x/crypto/ssh"
	"time"
)

// stepKeyPair makes a temporary ed25519 key pair for the build: generated
// here and imported, so the private key never crosses the network.
type stepKeyPair struct {
	created string
}

func (s *stepKeyPair) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, cl, ui := from(state)
	comm := &c.Comm
	if comm.SSHPrivateKeyFile != "" || comm.SSHKeyPairName != "" || comm.SSHAgentAuth || comm.SSHPassword != "" {
		ui.Say("Using the SSH credentials from the template")
		if comm.SSHPrivateKeyFile != "" {
			key, err := comm.ReadSSHPrivateKeyFile()
			if err != nil {
				return halt(state, fmt.Errorf("ssh_private_key_file: %w", err))
			}
			comm.SSHPrivateKey = key
		}
		if comm.SSHKeyPairName != "" {
			state.Put(stateKeyPairName, comm.SSHKeyPairName)
		}
		return multistep.ActionContinue
	}
	name := comm.SSHTemporaryKeyPairName
	if name == "" {
		name = "packer_" + uuid.TimeOrderedUUID()
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return halt(state, fmt.Errorf("generating a temporary ed25519 key: %w", err))
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return halt(state, fmt.Errorf("encoding the temporary key: %w", err))
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return halt(state, fmt.Errorf("encoding the temporary public key: %w", err))
	}
	ui.Say(fmt.Sprintf("Creating temporary ed25519 key pair %s...", name))
	s.created = name // DeleteKeyPair is idempotent: clean up even if the answer is lost
	_, err = cl.EC2(c.Region).ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName:           aws.String(name),
		PublicKeyMaterial: ssh.MarshalAuthorizedKey(sshPub),
		TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeKeyPair, map[string]string{"Name": name, tagBuilder: builderTag()})},
	})
	if err != nil {
		return halt(state, fmt.Errorf("importing temporary key pair %s: %w", name, err))
	}
	comm.SSHKeyPairName = name
	comm.SSHTemporaryKeyPairName = name
	comm.SSHPrivateKey = pem.EncodeToMemory(block)
	comm.SSHPublicKey = ssh.MarshalAuthorizedKey(sshPub)
	state.Put(stateKeyPairName, name)
	return multistep.ActionContinue
}

func (s *stepKeyPair) Cleanup(state multistep.StateBag) {
	if s.created == "" {
		return
	}
	c, cl, ui := from(state)
	ctx, cancel := cleanupContext(2 * time.Minute)
	defer cancel()
	ui.Say(fmt.Sprintf("Deleting temporary key pair %s...", s.created))
	if _, err := cl.EC2(c.Region).DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(s.created)}); err != nil {
		ui.Error(fmt.Sprintf("deleting temporary key pair %s: %v; delete it by hand", s.created, err))
		return
	}
	s.created = ""
}
