package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

func ssmNoRetry(o *ssm.Options) { o.Retryer = aws.NopRetryer{} }

type ssmEnv struct {
	t      *testing.T
	sb     *sandbox.Sandbox
	c      *ssm.Client
	ctx    context.Context
	region string
}

func newSSMEnv(t *testing.T, sb *sandbox.Sandbox, region string) *ssmEnv {
	return &ssmEnv{t: t, sb: sb, c: ssm.NewFromConfig(sandboxtest.Config(t, sb, region)), ctx: context.Background(), region: region}
}

func (e *ssmEnv) put(in *ssm.PutParameterInput) *ssm.PutParameterOutput {
	e.t.Helper()
	out, err := e.c.PutParameter(e.ctx, in)
	if err != nil {
		e.t.Fatalf("PutParameter(%s): %v", aws.ToString(in.Name), err)
	}
	return out
}

func (e *ssmEnv) putString(name, value string, overwrite bool) int64 {
	e.t.Helper()
	return e.put(&ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: types.ParameterTypeString, Overwrite: aws.Bool(overwrite)}).Version
}

func (e *ssmEnv) get(name string) types.Parameter {
	e.t.Helper()
	out, err := e.c.GetParameter(e.ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		e.t.Fatalf("GetParameter(%s): %v", name, err)
	}
	return *out.Parameter
}

// putImage puts an aws:ec2:image parameter and waits until Parameter
// Store has validated it.
func (e *ssmEnv) putImage(name, ami string, overwrite bool) int64 {
	e.t.Helper()
	out := e.put(&ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(ami), Type: types.ParameterTypeString,
		DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(overwrite)})
	e.waitValidated(name)
	return out.Version
}

func (e *ssmEnv) waitValidated(name string) {
	e.t.Helper()
	poll(e.t, "validation of "+name, func() (bool, string) { return !e.sb.FixtureSSMPending(e.region, name), "pending" })
}

// deleteAll deletes every parameter of the region, ten at a time.
func (e *ssmEnv) deleteAll() {
	e.t.Helper()
	var names []string
	p := ssm.NewDescribeParametersPaginator(e.c, &ssm.DescribeParametersInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(e.ctx)
		if err != nil {
			e.t.Fatalf("DescribeParameters: %v", err)
		}
		for _, m := range out.Parameters {
			names = append(names, aws.ToString(m.Name))
		}
	}
	for len(names) > 0 {
		n := min(10, len(names))
		out, err := e.c.DeleteParameters(e.ctx, &ssm.DeleteParametersInput{Names: names[:n]})
		if err != nil || len(out.InvalidParameters) > 0 {
			e.t.Fatalf("DeleteParameters: %v %v", out, err)
		}
		names = names[n:]
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := apiCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want %s", what, err, got, code)
	}
}

func TestSSMParameterVersionsLabelsAndReads(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	e := newSSMEnv(t, sb, "eu-central-1")
	ctx := e.ctx

	before := time.Now().Add(-time.Second)
	if v := e.putString("/app/prod/db-url", "postgres://one", false); v != 1 {
		t.Fatalf("first version %d", v)
	}
	p := e.get("/app/prod/db-url")
	if aws.ToString(p.ARN) != "arn:aws:ssm:eu-central-1:"+sandbox.AccountID+":parameter/app/prod/db-url" || aws.ToString(p.Value) != "postgres://one" ||
		p.Version != 1 || p.Type != types.ParameterTypeString || aws.ToString(p.DataType) != "text" || p.Selector != nil ||
		p.LastModifiedDate == nil || p.LastModifiedDate.Before(before) {
		t.Fatalf("parameter %+v", p)
	}
	if v := e.putString("/app/prod/db-url", "postgres://two", true); v != 2 {
		t.Fatalf("overwrite made version %d", v)
	}
	e.putString("/app/prod/db-url", "postgres://three", true)

	// "name" and "/name" are one parameter; its ARN has one slash.
	e.putString("plain", "x", false)
	_, err := e.c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/plain"), Value: aws.String("y"), Type: types.ParameterTypeString}, ssmNoRetry)
	var exists *types.ParameterAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("/plain after plain: %v", err)
	}
	if p := e.get("/plain"); aws.ToString(p.Name) != "plain" || aws.ToString(p.ARN) != "arn:aws:ssm:eu-central-1:"+sandbox.AccountID+":parameter/plain" {
		t.Fatalf("/plain reads %+v", p)
	}

	// Selectors: a version or a label, never a fallback to the latest.
	if p := e.get("/app/prod/db-url:1"); aws.ToString(p.Value) != "postgres://one" || aws.ToString(p.Selector) != ":1" || p.Version != 1 {
		t.Fatalf(":1 = %+v", p)
	}
	lab, err := e.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/prod/db-url"), ParameterVersion: aws.Int64(2),
		Labels: []string{"stable", "1bad", "awsy", "ssm-x", "has/slash", "ok.label_1-x"}})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lab.InvalidLabels)
	if lab.ParameterVersion != 2 || strings.Join(lab.InvalidLabels, ",") != "1bad,awsy,has/slash,ssm-x" {
		t.Fatalf("LabelParameterVersion = %+v", lab)
	}
	if p := e.get("/app/prod/db-url:stable"); aws.ToString(p.Value) != "postgres://two" || aws.ToString(p.Selector) != ":stable" {
		t.Fatalf(":stable = %+v", p)
	}
	// A label moves: without ParameterVersion it goes to the latest.
	if lab, err := e.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/prod/db-url"), Labels: []string{"stable"}}); err != nil || lab.ParameterVersion != 3 {
		t.Fatalf("moving stable: %+v %v", lab, err)
	}
	if p := e.get("/app/prod/db-url:stable"); p.Version != 3 {
		t.Fatalf("stable after the move: version %d", p.Version)
	}
	for _, sel := range []string{"/app/prod/db-url:9", "/app/prod/db-url:nolabel"} {
		_, err := e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(sel)}, ssmNoRetry)
		var nf *types.ParameterVersionNotFound
		if !errors.As(err, &nf) {
			t.Errorf("GetParameter(%s): %v, want ParameterVersionNotFound", sel, err)
		}
	}
	_, err = e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/nope")}, ssmNoRetry)
	var notFound *types.ParameterNotFound
	if !errors.As(err, &notFound) {
		t.Fatalf("missing parameter: %v", err)
	}
	_, err = e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/prod/db-url:1:2")}, ssmNoRetry)
	wantCode(t, "two selectors", err, "ValidationException")
	// By ARN, also with a selector; another account's ARN is a shared
	// parameter the sandbox does not have.
	arn := "arn:aws:ssm:eu-central-1:" + sandbox.AccountID + ":parameter/app/prod/db-url"
	if p := e.get(arn + ":1"); aws.ToString(p.Value) != "postgres://one" || aws.ToString(p.Name) != "/app/prod/db-url" {
		t.Fatalf("by ARN: %+v", p)
	}
	_, err = e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("arn:aws:ssm:eu-central-1:999999999999:parameter/app/prod/db-url")}, ssmNoRetry)
	wantCode(t, "another account's ARN", err, "ParameterNotFound")

	// Ten labels per version at most.
	var ten []string
	for i := 0; i < 10; i++ {
		ten = append(ten, fmt.Sprintf("l%d", i))
	}
	if _, err := e.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/prod/db-url"), ParameterVersion: aws.Int64(1), Labels: ten}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/prod/db-url"), ParameterVersion: aws.Int64(1), Labels: []string{"eleventh"}}, ssmNoRetry)
	var limit *types.ParameterVersionLabelLimitExceeded
	if !errors.As(err, &limit) {
		t.Fatalf("eleventh label: %v", err)
	}
	_, err = e.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/prod/db-url"), ParameterVersion: aws.Int64(7), Labels: []string{"x"}}, ssmNoRetry)
	wantCode(t, "label of a missing version", err, "ParameterVersionNotFound")
	un, err := e.c.UnlabelParameterVersion(ctx, &ssm.UnlabelParameterVersionInput{Name: aws.String("/app/prod/db-url"), ParameterVersion: aws.Int64(1), Labels: []string{"l0", "stable"}})
	if err != nil || strings.Join(un.RemovedLabels, ",") != "l0" || strings.Join(un.InvalidLabels, ",") != "stable" {
		t.Fatalf("UnlabelParameterVersion = %+v, %v", un, err)
	}

	// History: every version, oldest first, with its labels; paged.
	var hist []types.ParameterHistory
	hp := ssm.NewGetParameterHistoryPaginator(e.c, &ssm.GetParameterHistoryInput{Name: aws.String("/app/prod/db-url"), MaxResults: aws.Int32(2)})
	pages := 0
	for hp.HasMorePages() {
		out, err := hp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		hist = append(hist, out.Parameters...)
	}
	if pages != 2 || len(hist) != 3 || hist[0].Version != 1 || len(hist[0].Labels) != 9 || hist[1].Version != 2 ||
		strings.Join(hist[1].Labels, ",") != "ok.label_1-x" || strings.Join(hist[2].Labels, ",") != "stable" ||
		aws.ToString(hist[2].Value) != "postgres://three" || hist[2].Tier != types.ParameterTierStandard ||
		aws.ToString(hist[2].LastModifiedUser) != "arn:aws:iam::"+sandbox.AccountID+":user/sandbox" {
		t.Fatalf("history in %d pages: %+v", pages, hist)
	}
	_, err = e.c.GetParameterHistory(ctx, &ssm.GetParameterHistoryInput{Name: aws.String("/app/prod/db-url"), NextToken: aws.String("bogus")}, ssmNoRetry)
	wantCode(t, "history with a bad token", err, "InvalidNextToken")

	// GetParameters: found ones in name order, the rest InvalidParameters.
	gp, err := e.c.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"plain", "/app/prod/db-url:stable", "/app/none", "/app/prod/db-url:8"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(gp.Parameters) != 2 || aws.ToString(gp.Parameters[0].Name) != "/app/prod/db-url" || aws.ToString(gp.Parameters[1].Name) != "plain" ||
		strings.Join(gp.InvalidParameters, ",") != "/app/none,/app/prod/db-url:8" {
		t.Fatalf("GetParameters = %+v", gp)
	}
	_, err = e.c.GetParameters(ctx, &ssm.GetParametersInput{Names: strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}, ssmNoRetry)
	wantCode(t, "eleven names", err, "ValidationException")

	// Deletes.
	if _, err := e.c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/plain")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("plain")}, ssmNoRetry)
	wantCode(t, "deleting twice", err, "ParameterNotFound")
	dp, err := e.c.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: []string{"/app/prod/db-url", "/app/ghost"}})
	if err != nil || strings.Join(dp.DeletedParameters, ",") != "/app/prod/db-url" || strings.Join(dp.InvalidParameters, ",") != "/app/ghost" {
		t.Fatalf("DeleteParameters = %+v, %v", dp, err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestSSMPutParameterErrors(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	e := newSSMEnv(t, sb, "us-west-2")
	e.putString("/exists", "v", false)
	e.put(&ssm.PutParameterInput{Name: aws.String("/advanced"), Value: aws.String("v"), Type: types.ParameterTypeString, Tier: types.ParameterTierAdvanced})
	e.put(&ssm.PutParameterInput{Name: aws.String("/image"), Value: aws.String("ami-0123456789abcdef0"), Type: types.ParameterTypeString, DataType: aws.String("text")})
	deep := "/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11/l12/l13/l14"
	str := func(name, value string) *ssm.PutParameterInput {
		return &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: types.ParameterTypeString}
	}
	with := func(in *ssm.PutParameterInput, f func(*ssm.PutParameterInput)) *ssm.PutParameterInput {
		f(in)
		return in
	}
	cases := []struct {
		what string
		in   *ssm.PutParameterInput
		code string
	}{
		{"inner space", str("/a b", "v"), "ValidationException"},
		{"invalid character", str("/a$b", "v"), "ValidationException"},
		{"not fully qualified", str("a/b", "v"), "ValidationException"},
		{"empty level", str("/a//b", "v"), "ValidationException"},
		{"aws prefix", str("/aws/x", "v"), "ValidationException"},
		{"AWS prefix in a plain name", str("AWSthing", "v"), "ValidationException"},
		{"ssm prefix", str("SSM-param", "v"), "ValidationException"},
		{"sixteen levels", str(deep+"/l15/name", "v"), "HierarchyLevelLimitExceededException"},
		{"too long with its ARN", str("/"+strings.Repeat("n", 1000), "v"), "ValidationException"},
		{"exists without overwrite", str("/exists", "w"), "ParameterAlreadyExists"},
		{"tags with overwrite", with(str("/exists", "w"), func(in *ssm.PutParameterInput) {
			in.Overwrite, in.Tags = aws.Bool(true), []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}
		}), "ValidationException"},
		{"no type on create", &ssm.PutParameterInput{Name: aws.String("/new"), Value: aws.String("v")}, "ValidationException"},
		{"type change", with(str("/exists", "a,b"), func(in *ssm.PutParameterInput) { in.Type, in.Overwrite = types.ParameterTypeStringList, aws.Bool(true) }), "HierarchyTypeMismatchException"},
		{"value outside AllowedPattern", with(str("/num", "12a"), func(in *ssm.PutParameterInput) { in.AllowedPattern = aws.String(`\d+`) }), "ParameterPatternMismatchException"},
		{"invalid AllowedPattern", with(str("/num", "12"), func(in *ssm.PutParameterInput) { in.AllowedPattern = aws.String(`(\d+`) }), "InvalidAllowedPatternException"},
		{"standard value over 4 KB", str("/big", strings.Repeat("x", 4097)), "ValidationException"},
		{"advanced value over 8 KB", with(str("/big", strings.Repeat("x", 8193)), func(in *ssm.PutParameterInput) { in.Tier = types.ParameterTierAdvanced }), "ValidationException"},
		{"advanced back to standard", with(str("/advanced", "w"), func(in *ssm.PutParameterInput) { in.Overwrite, in.Tier = aws.Bool(true), types.ParameterTierStandard }), "ValidationException"},
		{"advanced updated in the default tier", with(str("/advanced", "w"), func(in *ssm.PutParameterInput) { in.Overwrite = aws.Bool(true) }), "ValidationException"},
		{"aws:ec2:image on a StringList", with(str("/img", "ami-0123456789abcdef0"), func(in *ssm.PutParameterInput) {
			in.Type, in.DataType = types.ParameterTypeStringList, aws.String("aws:ec2:image")
		}), "ValidationException"},
		{"text to aws:ec2:image", with(str("/image", "ami-0123456789abcdef0"), func(in *ssm.PutParameterInput) {
			in.Overwrite, in.DataType = aws.Bool(true), aws.String("aws:ec2:image")
		}), "ValidationException"},
		{"unknown data type", with(str("/dt", "1"), func(in *ssm.PutParameterInput) { in.DataType = aws.String("integer-ish") }), "ValidationException"},
		{"policies", with(str("/pol", "1"), func(in *ssm.PutParameterInput) { in.Policies = aws.String(`[]`) }), "ValidationException"},
		{"KeyId on a String", with(str("/k", "1"), func(in *ssm.PutParameterInput) { in.KeyId = aws.String("alias/aws/ssm") }), "ValidationException"},
		{"missing key", &ssm.PutParameterInput{Name: aws.String("/sec"), Value: aws.String("s"), Type: types.ParameterTypeSecureString, KeyId: aws.String("alias/none")}, "InvalidKeyId"},
		{"nested parameter", str("/nest", "{{ssm:/exists}}"), "ValidationException"},
		{"empty value", str("/empty", ""), "ValidationException"},
		{"reserved tag key", with(str("/tagged", "v"), func(in *ssm.PutParameterInput) {
			in.Tags = []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}
		}), "ValidationException"},
	}
	for _, c := range cases {
		_, err := e.c.PutParameter(e.ctx, c.in, ssmNoRetry)
		wantCode(t, c.what, err, c.code)
	}
	// What the table refused left nothing behind; the edges that pass.
	if out := e.put(str(deep+"/name", "fifteen levels")); out.Version != 1 {
		t.Errorf("fifteen levels: %+v", out)
	}
	if out := e.put(with(str("/big", strings.Repeat("x", 5000)), func(in *ssm.PutParameterInput) { in.Tier = types.ParameterTierIntelligentTiering })); out.Tier != types.ParameterTierAdvanced {
		t.Errorf("Intelligent-Tiering of 5000 bytes: %s", out.Tier)
	}
	if out := e.put(with(str("/num", "42"), func(in *ssm.PutParameterInput) { in.AllowedPattern = aws.String(`\d+`) })); out.Tier != types.ParameterTierStandard {
		t.Errorf("tier %s", out.Tier)
	}
	// The pattern stays with the parameter.
	_, err := e.c.PutParameter(e.ctx, with(str("/num", "x"), func(in *ssm.PutParameterInput) { in.Overwrite = aws.Bool(true) }), ssmNoRetry)
	wantCode(t, "overwrite outside the kept pattern", err, "ParameterPatternMismatchException")
	e.put(with(str("/advanced", "w"), func(in *ssm.PutParameterInput) { in.Overwrite, in.Tier = aws.Bool(true), types.ParameterTierAdvanced }))
	if inv := sb.Inventory(); len(inv) != 6 {
		t.Errorf("inventory %v", inv)
	}
	e.deleteAll()
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestSSMPutParameterIsALock races 20 PutParameter calls without
// Overwrite for one name, round after round: exactly one creates the
// parameter, the others get ParameterAlreadyExists, and the value is the
// winner's. A name deleted less than 30 seconds (scaled) ago cannot be
// created again yet.
func TestSSMPutParameterIsALock(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	e := newSSMEnv(t, sb, "eu-west-1")
	const workers, rounds = 20, 30
	for round := 0; round < rounds; round++ {
		name := fmt.Sprintf("/locks/deploy-%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var winners []string
		others := map[string]int{}
		start := make(chan struct{})
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				<-start
				me := fmt.Sprintf("holder-%d", w)
				_, err := e.c.PutParameter(e.ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(me), Type: types.ParameterTypeString}, ssmNoRetry)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					winners = append(winners, me)
				} else {
					others[apiCode(err)]++
				}
			}(w)
		}
		close(start)
		wg.Wait()
		if len(winners) != 1 || others["ParameterAlreadyExists"] != workers-1 {
			t.Fatalf("round %d: winners %v, others %v", round, winners, others)
		}
		if p := e.get(name); aws.ToString(p.Value) != winners[0] || p.Version != 1 {
			t.Fatalf("round %d: lock holds %q v%d, winner %s", round, aws.ToString(p.Value), p.Version, winners[0])
		}
		if _, err := e.c.DeleteParameter(e.ctx, &ssm.DeleteParameterInput{Name: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}
	// Re-creating a deleted name has to wait (a wait of 300 s, 3 s
	// scaled, so that a slow machine still sees it).
	if err := sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"ssm_recreate_after": 300}}); err != nil {
		t.Fatal(err)
	}
	lock := &ssm.PutParameterInput{Name: aws.String("/locks/again"), Value: aws.String("me"), Type: types.ParameterTypeString}
	e.put(lock)
	if _, err := e.c.DeleteParameter(e.ctx, &ssm.DeleteParameterInput{Name: lock.Name}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	_, err := e.c.PutParameter(e.ctx, lock, ssmNoRetry)
	wantCode(t, "re-creating at once", err, "TooManyUpdates")
	poll(t, "the name free again", func() (bool, string) {
		_, err := e.c.PutParameter(e.ctx, lock, ssmNoRetry)
		return err == nil, fmt.Sprint(err)
	})
	if waited := time.Since(deleted); waited < 2*time.Second {
		t.Errorf("created again %v after the delete", waited)
	}
	e.deleteAll()
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestSSMImageParameterIsValidatedAsynchronously: an aws:ec2:image
// PutParameter answers with a version number at once, the version exists
// only once validated, and an invalid AMI makes nothing (the number is
// used again by the next update).
func TestSSMImageParameterIsValidatedAsynchronously(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	const region = "ap-southeast-2"
	e := newSSMEnv(t, sb, region)
	// Validations take 50 s, 0.5 s scaled: long enough for the checks
	// made while one is pending, also on a slow machine.
	if err := sb.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"ssm_image_validation": 50}}); err != nil {
		t.Fatal(err)
	}
	amiA, amiB := sb.FixtureImage(region, ""), sb.FixtureImage(region, "")
	img := func(value string, overwrite bool) *ssm.PutParameterInput {
		return &ssm.PutParameterInput{Name: aws.String("/golden/web"), Value: aws.String(value), Type: types.ParameterTypeString,
			DataType: aws.String("aws:ec2:image"), Overwrite: aws.Bool(overwrite)}
	}
	if out := e.put(img(amiA, false)); out.Version != 1 {
		t.Fatalf("version %d", out.Version)
	}
	// Not there until validated; another update meanwhile is refused.
	_, err := e.c.GetParameter(e.ctx, &ssm.GetParameterInput{Name: aws.String("/golden/web")}, ssmNoRetry)
	wantCode(t, "read before validation", err, "ParameterNotFound")
	_, err = e.c.PutParameter(e.ctx, img(amiB, true), ssmNoRetry)
	wantCode(t, "update during validation", err, "TooManyUpdates")
	if inv := sb.Inventory(); len(inv) != 3 || inv[2].Type != "parameter" || inv[2].State != "pending-validation" {
		t.Fatalf("inventory during validation %v", inv)
	}
	e.waitValidated("/golden/web")
	if p := e.get("/golden/web"); aws.ToString(p.Value) != amiA || aws.ToString(p.DataType) != "aws:ec2:image" || p.Version != 1 {
		t.Fatalf("validated %+v", p)
	}
	// Invalid values: answered with version 2 and dropped.
	for _, bad := range []string{"ami-0123456789abcdef0", "not-an-ami", sandbox.PublicImageID(sb, "eu-west-1", "debian-12-amd64")} {
		if out := e.put(img(bad, true)); out.Version != 2 {
			t.Fatalf("%s: version %d", bad, out.Version)
		}
		if p := e.get("/golden/web"); p.Version != 1 {
			t.Fatalf("%s: visible before validation: %+v", bad, p)
		}
		e.waitValidated("/golden/web")
		if p := e.get("/golden/web"); p.Version != 1 || aws.ToString(p.Value) != amiA {
			t.Fatalf("%s was accepted: %+v", bad, p)
		}
	}
	// A deregistered AMI is not available either.
	sb.FixtureDeregisterImage(region, amiB)
	e.put(img(amiB, true))
	e.waitValidated("/golden/web")
	if p := e.get("/golden/web"); p.Version != 1 {
		t.Fatalf("deregistered AMI accepted: %+v", p)
	}
	amiC := sb.FixtureImage(region, "")
	if v := e.putImage("/golden/web", amiC, true); v != 2 {
		t.Fatalf("valid update got version %d", v)
	}
	if p := e.get("/golden/web"); p.Version != 2 || aws.ToString(p.Value) != amiC {
		t.Fatalf("after the valid update %+v", p)
	}
	// A first version that fails creates nothing.
	e.put(&ssm.PutParameterInput{Name: aws.String("/golden/bad"), Value: aws.String("ami-00000000"), Type: types.ParameterTypeString, DataType: aws.String("aws:ec2:image")})
	e.waitValidated("/golden/bad")
	_, err = e.c.GetParameter(e.ctx, &ssm.GetParameterInput{Name: aws.String("/golden/bad")}, ssmNoRetry)
	wantCode(t, "failed first version", err, "ParameterNotFound")
	e.deleteAll()
	sb.FixtureCleanup(region)
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestSSMListingsFiltersAndPaging(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	e := newSSMEnv(t, sb, "ca-central-1")
	ctx := e.ctx
	for _, n := range []string{"/app/a", "/app/b", "/app/c", "/app/sub/d", "/app/sub/deeper/e", "/other/f", "top"} {
		e.putString(n, "v-"+n, false)
	}
	e.put(&ssm.PutParameterInput{Name: aws.String("/app/list"), Value: aws.String("x,y"), Type: types.ParameterTypeStringList,
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}}})
	e.putString("/app/b", "v2", true)
	if _, err := e.c.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/app/b"), ParameterVersion: aws.Int64(1), Labels: []string{"old"}}); err != nil {
		t.Fatal(err)
	}

	byPath := func(in *ssm.GetParametersByPathInput) ([]string, int) {
		t.Helper()
		var names []string
		pages := 0
		p := ssm.NewGetParametersByPathPaginator(e.c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("GetParametersByPath: %v", err)
			}
			pages++
			for _, prm := range out.Parameters {
				names = append(names, aws.ToString(prm.Name)+"@"+fmt.Sprint(prm.Version))
			}
		}
		return names, pages
	}
	if got, _ := byPath(&ssm.GetParametersByPathInput{Path: aws.String("/app")}); strings.Join(got, " ") != "/app/a@1 /app/b@2 /app/c@1 /app/list@1" {
		t.Errorf("one level: %v", got)
	}
	if got, pages := byPath(&ssm.GetParametersByPathInput{Path: aws.String("/app/"), Recursive: aws.Bool(true), MaxResults: aws.Int32(2)}); len(got) != 6 || pages != 3 {
		t.Errorf("recursive in pages of 2: %v in %d pages", got, pages)
	}
	if got, _ := byPath(&ssm.GetParametersByPathInput{Path: aws.String("/")}); strings.Join(got, " ") != "top@1" {
		t.Errorf("root: %v", got)
	}
	// AWS's public parameters live under /aws/service; the sandbox has none.
	if got, _ := byPath(&ssm.GetParametersByPathInput{Path: aws.String("/aws/service/ami-amazon-linux-latest")}); len(got) != 0 {
		t.Errorf("public parameters: %v", got)
	}
	// A Label filter returns the labelled version.
	if got, _ := byPath(&ssm.GetParametersByPathInput{Path: aws.String("/app"), ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Label"), Values: []string{"old"}}}}); strings.Join(got, " ") != "/app/b@1" {
		t.Errorf("label filter: %v", got)
	}
	if got, _ := byPath(&ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true),
		ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Type"), Values: []string{"StringList"}}}}); strings.Join(got, " ") != "/app/list@1" {
		t.Errorf("type filter: %v", got)
	}
	// Filters apply within a page: a page can come back empty with a token.
	out, err := e.c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true), MaxResults: aws.Int32(1),
		ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Type"), Values: []string{"StringList"}}}})
	if err != nil || len(out.Parameters) != 0 || out.NextToken == nil {
		t.Errorf("first page of a sparse filter: %+v %v", out, err)
	}

	describe := func(in *ssm.DescribeParametersInput) []string {
		t.Helper()
		var names []string
		p := ssm.NewDescribeParametersPaginator(e.c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("DescribeParameters: %v", err)
			}
			for _, m := range out.Parameters {
				names = append(names, aws.ToString(m.Name))
			}
		}
		return names
	}
	f := func(key, option string, values ...string) types.ParameterStringFilter {
		sf := types.ParameterStringFilter{Key: aws.String(key), Values: values}
		if option != "" {
			sf.Option = aws.String(option)
		}
		return sf
	}
	for _, c := range []struct {
		filters []types.ParameterStringFilter
		want    string
	}{
		{nil, "/app/a /app/b /app/c /app/list /app/sub/d /app/sub/deeper/e /other/f top"},
		{[]types.ParameterStringFilter{f("Name", "BeginsWith", "/app/s")}, "/app/sub/d /app/sub/deeper/e"},
		{[]types.ParameterStringFilter{f("Name", "", "/top")}, "top"},
		{[]types.ParameterStringFilter{f("Name", "Contains", "deep")}, "/app/sub/deeper/e"},
		{[]types.ParameterStringFilter{f("Path", "", "/app/sub")}, "/app/sub/d"},
		{[]types.ParameterStringFilter{f("Path", "Recursive", "/app/sub")}, "/app/sub/d /app/sub/deeper/e"},
		{[]types.ParameterStringFilter{f("Path", "OneLevel", "/"), f("Type", "", "String")}, "top"},
		{[]types.ParameterStringFilter{f("tag:team", "")}, "/app/list"},
		{[]types.ParameterStringFilter{f("tag:team", "BeginsWith", "we")}, "/app/list"},
		{[]types.ParameterStringFilter{f("DataType", "", "aws:ec2:image")}, ""},
		{[]types.ParameterStringFilter{f("Tier", "", "Standard"), f("Type", "", "StringList")}, "/app/list"},
	} {
		if got := strings.Join(describe(&ssm.DescribeParametersInput{ParameterFilters: c.filters, MaxResults: aws.Int32(3)}), " "); got != c.want {
			t.Errorf("DescribeParameters %v: %q, want %q", c.filters, got, c.want)
		}
	}
	// The deprecated Filters still work, alone.
	if got := describe(&ssm.DescribeParametersInput{Filters: []types.ParametersFilter{{Key: types.ParametersFilterKeyType, Values: []string{"StringList"}}}}); strings.Join(got, " ") != "/app/list" {
		t.Errorf("Filters: %v", got)
	}
	meta, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{f("Name", "", "/app/b")}})
	if err != nil || len(meta.Parameters) != 1 || meta.Parameters[0].Version != 2 || aws.ToString(meta.Parameters[0].ARN) != "arn:aws:ssm:ca-central-1:"+sandbox.AccountID+":parameter/app/b" ||
		aws.ToString(meta.Parameters[0].DataType) != "text" || meta.Parameters[0].Tier != types.ParameterTierStandard {
		t.Errorf("metadata %+v %v", meta, err)
	}

	for _, c := range []struct {
		what string
		call func() error
		code string
	}{
		{"Label in DescribeParameters", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{f("Label", "", "old")}}, ssmNoRetry)
			return err
		}, "InvalidFilterKey"},
		{"Name in GetParametersByPath", func() error {
			_, err := e.c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/app"), ParameterFilters: []types.ParameterStringFilter{f("Name", "", "/app/a")}}, ssmNoRetry)
			return err
		}, "InvalidFilterKey"},
		{"Label with BeginsWith", func() error {
			_, err := e.c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/app"), ParameterFilters: []types.ParameterStringFilter{f("Label", "BeginsWith", "o")}}, ssmNoRetry)
			return err
		}, "InvalidFilterOption"},
		{"Path with Equals", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{f("Path", "Equals", "/app")}}, ssmNoRetry)
			return err
		}, "InvalidFilterOption"},
		{"Path value without a slash", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{f("Path", "", "app")}}, ssmNoRetry)
			return err
		}, "InvalidFilterValue"},
		{"Type value", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{f("Type", "", "Secret")}}, ssmNoRetry)
			return err
		}, "InvalidFilterValue"},
		{"Filters and ParameterFilters", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{f("Type", "", "String")},
				Filters: []types.ParametersFilter{{Key: types.ParametersFilterKeyName, Values: []string{"top"}}}}, ssmNoRetry)
			return err
		}, "ValidationException"},
		{"bad token", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{NextToken: aws.String("nope")}, ssmNoRetry)
			return err
		}, "InvalidNextToken"},
		{"MaxResults 11 by path", func() error {
			_, err := e.c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/app"), MaxResults: aws.Int32(11)}, ssmNoRetry)
			return err
		}, "ValidationException"},
		{"MaxResults 51", func() error {
			_, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{MaxResults: aws.Int32(51)}, ssmNoRetry)
			return err
		}, "ValidationException"},
		{"path without a slash", func() error {
			_, err := e.c.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("app")}, ssmNoRetry)
			return err
		}, "ValidationException"},
	} {
		wantCode(t, c.what, c.call(), c.code)
	}
	e.deleteAll()
	sandboxtest.RequireEmptyInventory(t, sb)
}

func TestSSMTagsAndSecureStrings(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	const region = "eu-north-1"
	e := newSSMEnv(t, sb, region)
	ctx := e.ctx
	e.put(&ssm.PutParameterInput{Name: aws.String("/svc/token"), Value: aws.String("s3cret"), Type: types.ParameterTypeSecureString,
		Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("ops")}}})

	// Tags.
	tags := func() string {
		t.Helper()
		out, err := e.c.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String("/svc/token")})
		if err != nil {
			t.Fatal(err)
		}
		var kv []string
		for _, tg := range out.TagList {
			kv = append(kv, aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
		}
		return strings.Join(kv, ",")
	}
	if got := tags(); got != "owner=ops" {
		t.Fatalf("tags %s", got)
	}
	if _, err := e.c.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String("/svc/token"),
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}, {Key: aws.String("owner"), Value: aws.String("web")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.RemoveTagsFromResource(ctx, &ssm.RemoveTagsFromResourceInput{ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String("/svc/token"), TagKeys: []string{"env", "absent"}}); err != nil {
		t.Fatal(err)
	}
	if got := tags(); got != "owner=web" {
		t.Fatalf("tags after add and remove %s", got)
	}
	var many []types.Tag
	for i := 0; i < 50; i++ {
		many = append(many, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
	}
	_, err := e.c.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String("/svc/token"), Tags: many}, ssmNoRetry)
	wantCode(t, "51 tags", err, "TooManyTagsError")
	_, err = e.c.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: types.ResourceTypeForTaggingParameter, ResourceId: aws.String("/svc/none")}, ssmNoRetry)
	wantCode(t, "tags of a missing parameter", err, "InvalidResourceId")
	_, err = e.c.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: types.ResourceTypeForTaggingDocument, ResourceId: aws.String("doc")}, ssmNoRetry)
	wantCode(t, "tags of a document", err, "InvalidResourceType")

	// A SecureString is encrypted under aws/ssm (created on first use)
	// and read back in plaintext only with decryption.
	plain := e.get("/svc/token")
	enc, err := e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/svc/token")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(plain.Value) != "s3cret" || aws.ToString(enc.Parameter.Value) == "s3cret" || strings.Contains(aws.ToString(enc.Parameter.Value), "s3cret") {
		t.Fatalf("decrypted %q, encrypted %q", aws.ToString(plain.Value), aws.ToString(enc.Parameter.Value))
	}
	meta, err := e.c.DescribeParameters(ctx, &ssm.DescribeParametersInput{ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("KeyId"), Values: []string{"alias/aws/ssm"}}}})
	if err != nil || len(meta.Parameters) != 1 || aws.ToString(meta.Parameters[0].KeyId) != "alias/aws/ssm" {
		t.Fatalf("KeyId filter: %+v %v", meta, err)
	}
	kc := kms.NewFromConfig(sandboxtest.Config(t, sb, region))
	if k, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ssm")}); err != nil || k.KeyMetadata.KeyManager != "AWS" {
		t.Fatalf("aws/ssm: %+v %v", k, err)
	}
	// A customer key that is disabled cannot decrypt.
	key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("params")})
	if err != nil {
		t.Fatal(err)
	}
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	e.put(&ssm.PutParameterInput{Name: aws.String("/svc/db"), Value: aws.String("pw"), Type: types.ParameterTypeSecureString, KeyId: aws.String(keyID)})
	if _, err := kc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/svc/db"), WithDecryption: aws.Bool(true)}, ssmNoRetry)
	wantCode(t, "decrypting with a disabled key", err, "InvalidKeyId")
	if _, err := e.c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/svc/db")}); err != nil {
		t.Errorf("reading the ciphertext: %v", err)
	}
	e.deleteAll()
	if _, err := kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	sandboxtest.RequireEmptyInventory(t, sb)
}

// TestSSMVersionLimit: Parameter Store keeps 100 versions and drops the
// oldest, unless it has a label.
func TestSSMVersionLimit(t *testing.T) {
	t.Parallel()
	sb := sandboxtest.Start(t)
	e := newSSMEnv(t, sb, "sa-east-1")
	for i := 1; i <= 101; i++ {
		e.putString("/counter", fmt.Sprint(i), i > 1)
	}
	_, err := e.c.GetParameter(e.ctx, &ssm.GetParameterInput{Name: aws.String("/counter:1")}, ssmNoRetry)
	wantCode(t, "version 1 after 101 versions", err, "ParameterVersionNotFound")
	if p := e.get("/counter:2"); aws.ToString(p.Value) != "2" {
		t.Fatalf("version 2 = %+v", p)
	}
	if _, err := e.c.LabelParameterVersion(e.ctx, &ssm.LabelParameterVersionInput{Name: aws.String("/counter"), ParameterVersion: aws.Int64(2), Labels: []string{"keep"}}); err != nil {
		t.Fatal(err)
	}
	_, err = e.c.PutParameter(e.ctx, &ssm.PutParameterInput{Name: aws.String("/counter"), Value: aws.String("102"), Type: types.ParameterTypeString, Overwrite: aws.Bool(true)}, ssmNoRetry)
	var limit *types.ParameterMaxVersionLimitExceeded
	if !errors.As(err, &limit) {
		t.Fatalf("102nd version with a labelled oldest: %v", err)
	}
	e.deleteAll()
	sandboxtest.RequireEmptyInventory(t, sb)
}
