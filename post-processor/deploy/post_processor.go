// Package deploy is the phoenix-deploy post-processor: it takes the AMI a
// build made (phoenix-ebs, amazon-ebs, or any builder whose artifact Id is
// region:ami-…[,…]) and rolls it onto an Auto Scaling group with the
// deployer, printing the deployer's progress through Packer's UI.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/awsconfig"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/printer"
)

// BuilderIDs are builders known to make AMI artifacts; any other whose Id
// has the same shape is accepted too.
var BuilderIDs = []string{"immutable-infra.phoenix-ebs", "mitchellh.amazonebs"}

// PluginType names the post-processor in Packer's decoding errors.
const PluginType = "immutable-infra.phoenix-deploy"

// PostProcessor is phoenix-deploy.
type PostProcessor struct {
	config Config
}

// ConfigSpec is the HCL2 spec of Config.
func (p *PostProcessor) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Configure decodes and checks the configuration.
func (p *PostProcessor) Configure(raws ...interface{}) error { return p.config.Prepare(raws...) }

var amiEntry = regexp.MustCompile(`^([a-z]{2}(-[a-z]+)+-\d+):(ami-[0-9a-f]+)$`)

// AMIs reads an artifact Id of the form region:ami-…[,region:ami-…].
func AMIs(id string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(id, ",") {
		m := amiEntry.FindStringSubmatch(strings.TrimSpace(part))
		if m == nil {
			return nil, fmt.Errorf("artifact id %q is not region:ami-…[,region:ami-…]", id)
		}
		out[m[1]] = m[3]
	}
	return out, nil
}

// PostProcess deploys the artifact's AMI for the target's region. It keeps
// the artifact whatever happens, and fails the build with the deployer's
// message when the deploy does not succeed.
func (p *PostProcessor) PostProcess(ctx context.Context, ui packersdk.Ui, a packersdk.Artifact) (packersdk.Artifact, bool, bool, error) {
	amis, err := AMIs(a.Id())
	if err != nil {
		return a, true, false, fmt.Errorf("phoenix-deploy takes an AMI artifact; the %s artifact: %w", a.BuilderId(), err)
	}
	w := &uiWriter{ui: ui}
	pr, _ := printer.New(printer.Text, w)
	ds, err := p.deployers(ctx, pr)
	if err != nil {
		return a, true, false, err
	}
	for _, d := range ds {
		ami, ok := amis[d.Target.Region]
		if !ok {
			return a, true, false, fmt.Errorf("the %s artifact has no AMI in %s, the region of target %q (it has AMIs in: %s): add the region to the build's ami_regions or deploy to one of those", a.BuilderId(), d.Target.Region, d.Target.Name, strings.Join(regions(amis), ", "))
		}
		onto := fmt.Sprintf("%q", d.Target.Group)
		if d.Target.PeerGroup != "" {
			onto = fmt.Sprintf("%q / %q", d.Target.Group, d.Target.PeerGroup)
		}
		ui.Say(fmt.Sprintf("phoenix-deploy: deploying %s onto %s in %s (%s)", ami, onto, d.Target.Region, d.Strategy.Name()))
		res, err := d.Run(ctx, ami)
		pr.Result(res)
		w.flush()
		if err != nil {
			return a, true, false, fmt.Errorf("phoenix-deploy of %s to %q (%s): %w", ami, d.Target.Group, deployer.OutcomeOf(err), err)
		}
	}
	return a, true, false, nil
}

func regions(amis map[string]string) []string {
	out := make([]string, 0, len(amis))
	for r := range amis {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// deployers builds a Deployer per target from the environment and the
// inline settings, which override it.
func (p *PostProcessor) deployers(ctx context.Context, pr printer.Printer) ([]*deployer.Deployer, error) {
	c := p.config
	settings := c.Settings
	var strategy deployer.StrategySettings
	var targets []deployer.EnvironmentTarget
	grantKMS := c.GrantKMS
	var poll time.Duration
	// The environment's policy is a floor: the post-processor's policy
	// block and require_encrypted add rules to it (docs/deployer.md).
	own, _ := c.Policy.Policy()
	own.RequireEncrypted = own.RequireEncrypted || c.RequireEncrypted
	policy := (*deployer.Policy)(nil).Tighten(*own)
	var evidence deployer.Evidence
	envName := ""
	if c.Environment != "" {
		cfg, err := deployer.LoadConfig(c.ConfigFile)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("config_file %s not found (environment %q)", c.ConfigFile, c.Environment)
			}
			return nil, err
		}
		env, err := cfg.Environment(c.Environment)
		if err != nil {
			return nil, err
		}
		strategy = deployer.StrategySettings{Kind: env.Strategy, Rolling: env.Rolling, BlueGreen: env.BlueGreen}
		poll = env.PollInterval
		envName = env.Name
		policy = env.Policy.Tighten(*own)
		if policy.PromotedFrom != "" {
			evidence, err = cfg.Evidence(policy.PromotedFrom, c.Endpoint, func(s awsconfig.Settings) (aws.Config, error) { return s.Load(ctx, "") })
			if err != nil {
				return nil, fmt.Errorf("policy promoted_from %q: %w", policy.PromotedFrom, err)
			}
		}
		grantKMS = grantKMS || env.GrantKMS
		settings = env.Settings
		overrideSettings(&settings, c)
		if targets, err = env.Select(c.Target); err != nil {
			return nil, err
		}
		if c.ASG != "" || c.PeerASG != "" || c.Listener != "" || c.Rule != "" {
			if len(targets) != 1 {
				return nil, errors.New("asg, peer_asg, listener and rule override one target of the environment: choose it with target")
			}
		}
	} else {
		targets = []deployer.EnvironmentTarget{{Name: c.ASG}}
	}
	for i := range targets {
		t := &targets[i]
		for _, f := range []struct {
			v   string
			dst *string
		}{{c.ASG, &t.ASG}, {c.PeerASG, &t.PeerASG}, {c.Listener, &t.Listener}, {c.Rule, &t.Rule}} {
			if f.v != "" {
				*f.dst = f.v
			}
		}
	}
	if len(c.TargetGroups) > 0 {
		for i := range targets {
			targets[i].TargetGroups = c.TargetGroups
		}
	}
	strategy = c.strategy(strategy)
	strat, timeout, errs := strategy.Strategy()
	errs = append(errs, c.rollingOnly(strategy.Kind)...)
	for _, t := range targets {
		errs = append(errs, deployer.CheckTarget(strategy.Kind, t)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c.PollInterval != "" {
		poll, _ = time.ParseDuration(c.PollInterval)
	}
	awsCfg, err := settings.Load(ctx, "")
	if err != nil {
		return nil, err
	}
	if policy.Empty() {
		policy = nil
	}
	var out []*deployer.Deployer
	for _, t := range targets {
		if c.Settings.Region != "" {
			t.Region = "" // region puts every target in it
		}
		// A target in its own region takes the artifact's AMI there.
		cfg := deployer.TargetConfig(awsCfg, t)
		out = append(out, &deployer.Deployer{
			Clients:       deployer.NewClients(cfg),
			Target:        t.Target(awsCfg.Region),
			Strategy:      strat,
			Policy:        policy,
			Evidence:      evidence,
			Environment:   envName,
			Source:        p.source(),
			GrantKMS:      grantKMS,
			HealthTimeout: timeout,
			PollInterval:  poll,
			Owner:         "packer@" + hostname(),
			Events:        pr.Event,
		})
	}
	return out, nil
}

// source names the Packer build for the deploy history.
func (p *PostProcessor) source() string {
	if n := p.config.PackerBuildName; n != "" {
		return "packer build " + n
	}
	return "packer build"
}

// overrideSettings puts the inline access settings over the
// environment's.
func overrideSettings(s *awsconfig.Settings, c Config) {
	in := c.Settings
	if in.Region != "" {
		s.Region = in.Region
	}
	if in.Profile != "" {
		s.Profile = in.Profile
	}
	if in.AccessKey != "" {
		s.AccessKey, s.SecretKey, s.Token = in.AccessKey, in.SecretKey, in.Token
	}
	if in.AssumeRole.RoleARN != "" {
		s.AssumeRole = in.AssumeRole
	}
	if in.Endpoint != "" {
		s.Endpoint = in.Endpoint
	}
	if in.MaxRetries != 0 {
		s.MaxRetries = in.MaxRetries
	}
}

func hostname() string {
	h, _ := os.Hostname()
	if h == "" {
		return "unknown"
	}
	return h
}

// uiWriter sends each line the printer writes to Packer's UI.
type uiWriter struct {
	ui  packersdk.Ui
	buf []byte
}

func (w *uiWriter) Write(b []byte) (int, error) {
	w.buf = append(w.buf, b...)
	for {
		i := strings.IndexByte(string(w.buf), '\n')
		if i < 0 {
			break
		}
		w.ui.Say(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(b), nil
}

func (w *uiWriter) flush() {
	if len(w.buf) > 0 {
		w.ui.Say(string(w.buf))
		w.buf = nil
	}
}
