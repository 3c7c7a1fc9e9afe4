package deployer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
)

func score(v float64) *float64 { return &v }

// TestPolicyRules plays every rule of the admission policy, passing and
// failing: a passing AMI gets a plan that shows the rule passed, a failing
// one is refused with the exact message and no mutating call, and one that
// fails several rules is refused with every failed rule listed.
func TestPolicyRules(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	id, err := sts.NewFromConfig(f.Config).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	account := aws.ToString(id.Account)
	now := time.Now().UTC()
	built := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339) }
	good := f.Image("web-good", deploytest.ImageOptions{Encrypted: true, Tags: map[string]string{
		deployer.HardeningScoreTag: "96.5", deployer.HardeningProfileTag: "cis-level1", "Team": "web-platform", deployer.BuildTimeTag: built(48 * time.Hour)}})
	bad := f.Image("web-bad", deploytest.ImageOptions{Tags: map[string]string{
		deployer.HardeningScoreTag: "85", deployer.HardeningProfileTag: "baseline", "Team": "api", deployer.BuildTimeTag: built(40 * 24 * time.Hour)}})
	bare := f.Image("web-bare", deploytest.ImageOptions{Encrypted: true})
	old := f.Image("web-1", deploytest.ImageOptions{})
	f.Stack("web", old, deploytest.StackOptions{Desired: 1})

	cases := []struct {
		name   string
		policy deployer.Policy
		pass   string
		fail   string
		want   string // the failed rule's line
	}{
		{"min_hardening_score below", deployer.Policy{MinHardeningScore: score(90)}, good, bad,
			"min_hardening_score: " + bad + " scores 85 (phoenix:hardening-score), the minimum is 90"},
		{"min_hardening_score missing", deployer.Policy{MinHardeningScore: score(90)}, good, bare,
			"min_hardening_score: " + bare + " has no phoenix:hardening-score tag (not hardened by phoenix-harden), the minimum is 90"},
		{"hardening_profile other", deployer.Policy{HardeningProfile: "cis-level1"}, good, bad,
			`hardening_profile: ` + bad + ` was hardened with "baseline" (phoenix:hardening-profile), the profile required is "cis-level1"`},
		{"hardening_profile missing", deployer.Policy{HardeningProfile: "cis-level1"}, good, bare,
			`hardening_profile: ` + bare + ` has no phoenix:hardening-profile tag, the profile required is "cis-level1"`},
		{"require_encrypted", deployer.Policy{RequireEncrypted: true}, good, bad,
			"require_encrypted: " + bad + " has unencrypted EBS snapshots: deploy an encrypted AMI (phoenix-ebs encrypts by default)"},
		{"required_tags pattern", deployer.Policy{RequiredTags: map[string]string{"Team": "web-*"}}, good, bad,
			`required_tags: ` + bad + `'s tag Team is "api" (required: "web-*")`},
		{"required_tags missing", deployer.Policy{RequiredTags: map[string]string{"Team": "web-*"}}, good, bare,
			`required_tags: ` + bare + ` has no tag Team (required: "web-*")`},
		{"max_age", deployer.Policy{MaxAge: 30 * 24 * time.Hour}, good, bad,
			"max_age: " + bad + " was built " + built(40*24*time.Hour) + " (phoenix:build-time, 40d ago), max_age is 30d"},
		{"allowed_owners", deployer.Policy{AllowedOwners: []string{"111111111111"}}, "", good,
			"allowed_owners: " + good + " is owned by account " + account + " (allowed: 111111111111)"},
		{"allowed_owners own account", deployer.Policy{AllowedOwners: []string{account}}, good, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			if tc.pass != "" {
				d := newDeployer(f, "web", nil, nil)
				d.Policy, d.Environment = &p, "prod"
				pl, err := d.Plan(ctx, tc.pass)
				if err != nil {
					t.Fatalf("plan of %s: %v", tc.pass, err)
				}
				if v := pl.Policy; v == nil || !v.Admitted || len(v.Rules) == 0 || !v.Rules[0].Passed {
					t.Errorf("plan of %s: verdict %+v, want the rule passed", tc.pass, pl.Policy)
				}
			}
			if tc.fail == "" {
				return
			}
			d := newDeployer(f, "web", nil, nil)
			d.Policy, d.Environment = &p, "prod"
			f.SB.ResetCalls()
			res, err := d.Run(ctx, tc.fail)
			name := map[string]string{good: "web-good", bad: "web-bad", bare: "web-bare"}[tc.fail]
			want := fmt.Sprintf("AMI %s (%s) is not admitted by environment prod's policy (1 of 1 rules failed):\n  %s", tc.fail, name, tc.want)
			if err == nil || err.Error() != want || res.Outcome != deployer.Refused {
				t.Errorf("deploy of %s: %v\nwant: %s", tc.fail, err, want)
			}
			if n := f.Mutating(); n != 0 {
				t.Errorf("a refused deploy made %d mutating calls: %v", n, f.SB.Calls())
			}
		})
	}

	t.Run("every failed rule listed", func(t *testing.T) {
		p := deployer.Policy{MinHardeningScore: score(90), HardeningProfile: "cis-level1", RequireEncrypted: true, RequiredTags: map[string]string{"Team": "web-*"},
			MaxAge: 30 * 24 * time.Hour, AllowedOwners: []string{account}}
		d := newDeployer(f, "web", nil, nil)
		d.Policy, d.Environment = &p, "prod"
		f.SB.ResetCalls()
		_, err := d.Run(ctx, bad)
		if err == nil || !strings.HasPrefix(err.Error(), "AMI "+bad+" (web-bad) is not admitted by environment prod's policy (5 of 6 rules failed):\n") {
			t.Fatalf("deploy of %s: %v", bad, err)
		}
		for _, rule := range []string{"min_hardening_score", "hardening_profile", "require_encrypted", "required_tags", "max_age"} {
			if !strings.Contains(err.Error(), "\n  "+rule+": ") {
				t.Errorf("the refusal does not list %s:\n%v", rule, err)
			}
		}
		if strings.Contains(err.Error(), "allowed_owners") {
			t.Errorf("the refusal lists a rule that passed:\n%v", err)
		}
		if n := f.Mutating(); n != 0 {
			t.Errorf("a refused deploy made %d mutating calls", n)
		}
	})
}

// TestPolicyPromotedFrom: an AMI is admitted to prod when it is live and
// healthy in staging, or was (a succeeded deploy in staging's history),
// and refused when it never was; the deploy history lists every deploy
// newest first with its outcome.
func TestPolicyPromotedFrom(t *testing.T) {
	t.Parallel()
	f := deploytest.New(t, nil, region)
	ctx := context.Background()
	old := f.Image("web-1", deploytest.ImageOptions{})
	first := f.Image("web-2", deploytest.ImageOptions{})
	second := f.Image("web-3", deploytest.ImageOptions{})
	never := f.Image("web-4", deploytest.ImageOptions{})
	failing := f.Image("web-5", deploytest.ImageOptions{Health: "fail"})
	f.Stack("staging", old, deploytest.StackOptions{Desired: 1})
	f.Stack("prod", old, deploytest.StackOptions{Desired: 1})

	staging := newDeployer(f, "staging", nil, nil)
	staging.Environment = "staging"
	evidence := &deployer.EnvironmentEvidence{Name: "staging", Deployers: []*deployer.Deployer{staging}}
	prod := func() *deployer.Deployer {
		d := newDeployer(f, "prod", nil, nil)
		d.Policy, d.Evidence, d.Environment = &deployer.Policy{PromotedFrom: "staging"}, evidence, "prod"
		return d
	}
	planDetail := func(ami string) (string, error) {
		pl, err := prod().Plan(ctx, ami)
		if err != nil {
			return "", err
		}
		return pl.Policy.Rules[0].Detail, nil
	}

	if res, err := staging.Run(ctx, first); err != nil {
		t.Fatalf("deploy to staging: %v (%+v)", err, res)
	}
	if got, err := planDetail(first); err != nil || !strings.Contains(got, region+":"+first+" is live and healthy in staging (target staging, 1/1 healthy)") {
		t.Errorf("plan of the AMI live in staging: %q %v", got, err)
	}
	if res, err := staging.Run(ctx, second); err != nil {
		t.Fatalf("second deploy to staging: %v (%+v)", err, res)
	}
	if got, err := planDetail(first); err != nil || !strings.Contains(got, region+":"+first+" was live and healthy in staging (target staging: deployed ") || !strings.HasSuffix(got, "succeeded; now "+second+")") {
		t.Errorf("plan of the AMI staging ran before: %q %v", got, err)
	}
	if _, err := staging.Run(ctx, failing); err == nil {
		t.Fatal("a deploy of a failing image to staging succeeded")
	}

	for _, ami := range []string{never, failing} {
		f.SB.ResetCalls()
		_, err := prod().Run(ctx, ami)
		name := map[string]string{never: "web-4", failing: "web-5"}[ami]
		want := fmt.Sprintf("AMI %s (%s) is not admitted by environment prod's policy (1 of 1 rules failed):\n  promoted_from: %s:%s was never live and healthy in staging (target staging serves %s; no succeeded deploy of it in the history): deploy it there first, or promote from there", ami, name, region, ami, second)
		if err == nil || err.Error() != want {
			t.Errorf("deploy to prod of an AMI staging never ran healthy: %v\nwant: %s", err, want)
		}
		if n := f.Mutating(); n != 0 {
			t.Errorf("a refused deploy made %d mutating calls", n)
		}
	}
	if res, err := prod().Run(ctx, first); err != nil {
		t.Fatalf("deploy to prod of what staging ran: %v (%+v)", err, res)
	}

	// The history: newest first, one record per deploy that got past its
	// checks, each with its outcome; refused ones are not in it.
	recs, err := staging.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s %s<-%s %s", r.Action, r.Environment, r.AMI, r.Previous, r.Outcome))
		if r.By == "" || !strings.HasPrefix(r.By, "test@phoenix as arn:aws:") || r.Started.IsZero() || r.Ended.Before(r.Started) || r.Group != "staging" {
			t.Errorf("record %d: %+v", r.Version, r)
		}
	}
	want := []string{
		"deploy staging " + failing + "<-" + second + " rolled back",
		"deploy staging " + second + "<-" + first + " succeeded",
		"deploy staging " + first + "<-" + old + " succeeded",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("staging's history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if recs, err := prod().History(ctx); err != nil || len(recs) != 1 || recs[0].AMI != first || recs[0].Outcome != deployer.Succeeded || recs[0].Environment != "prod" {
		t.Errorf("prod's history: %+v %v", recs, err)
	}
}
