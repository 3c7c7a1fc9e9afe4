package ebs

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// clients hands out EC2, KMS and SSM clients per region, built once from
// the same access settings.
type clients struct {
	mu   sync.Mutex
	base aws.Config
	ec2  map[string]*ec2.Client
	kms  map[string]*kms.Client
	ssm  map[string]*ssm.Client
}

func newClients(ctx context.Context, c *Config) (*clients, error) {
	cfg, err := c.Settings.Load(ctx, c.Region)
	if err != nil {
		return nil, fmt.Errorf("configuring AWS access: %w", err)
	}
	return &clients{base: cfg, ec2: map[string]*ec2.Client{}, kms: map[string]*kms.Client{}, ssm: map[string]*ssm.Client{}}, nil
}

// EC2 returns the EC2 client of region.
func (c *clients) EC2(region string) *ec2.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.ec2[region]; ok {
		return cl
	}
	cl := ec2.NewFromConfig(c.base, func(o *ec2.Options) { o.Region = region })
	c.ec2[region] = cl
	return cl
}

// KMS returns the KMS client of region.
func (c *clients) KMS(region string) *kms.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.kms[region]; ok {
		return cl
	}
	cl := kms.NewFromConfig(c.base, func(o *kms.Options) { o.Region = region })
	c.kms[region] = cl
	return cl
}

// SSM returns the Systems Manager (Parameter Store) client of region.
func (c *clients) SSM(region string) *ssm.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.ssm[region]; ok {
		return cl
	}
	cl := ssm.NewFromConfig(c.base, func(o *ssm.Options) { o.Region = region })
	c.ssm[region] = cl
	return cl
}
