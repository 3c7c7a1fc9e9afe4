package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/builder/ebs"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/post-processor/deploy"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// credentialRecorder is a proxy in front of the sandbox that notes the
// access key ids and session tokens of the requests it forwards, to show
// that the credentials a test hides were really in use.
type credentialRecorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (c *credentialRecorder) start(t *testing.T, target string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	c.seen = map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.seen[r.Header.Get("X-Amz-Security-Token")] = true
		if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
			c.seen[strings.SplitN(cred, "/", 2)[0]] = true
		}
		c.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (c *credentialRecorder) saw(v string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[v]
}

// No secret given to phoenix — AWS credentials in the environment, in
// phoenix.hcl, in a Packer template — shows in anything it prints or logs:
// the CLI's text and JSON output and its errors (refusals and a rolled
// back deploy included), phoenix-ebs's and phoenix-deploy's Packer UI, Go's
// log (where Packer's UI and plugins log) and the sandbox's log.
func TestNoSecretInOutputOrLogs(t *testing.T) {
	secrets := map[string]string{
		"AWS_SECRET_ACCESS_KEY":           "envSecretKey/phoenixENV+7Qx2ZZ",
		"AWS_SESSION_TOKEN":               "envSessionToken//phoenixENV+FwoGZXIvYXdz",
		"phoenix.hcl secret_key":          "hclSecretKey/phoenixHCL+9Jm4ZZ",
		"phoenix.hcl token":               "hclSessionToken//phoenixHCL+FwoGZXIvYXdz",
		"template secret_key":             "pkrSecretKey/phoenixPKR+3Kd8ZZ",
		"template token":                  "pkrSessionToken//phoenixPKR+FwoGZXIvYXdz",
		"template secret_key (a refusal)": "pkrSecretKey/phoenixREFUSED+1Aa1ZZ",
	}
	const envKey, hclKey, pkrKey = "AKIAPHOENIXENV000001", "AKIAPHOENIXHCL000001", "AKIAPHOENIXPKR000001"

	var sandboxLog, goLog syncBuffer
	sb := sandboxtest.StartWith(t, sandbox.Options{TimeScale: sandboxtest.TimeScale, Log: &sandboxLog})
	// Registered first, so it runs after the fixture has removed its
	// resources.
	t.Cleanup(func() { sandboxtest.RequireEmptyInventory(t, sb) })
	var rec credentialRecorder
	endpoint := rec.start(t, sb.URL())
	f := deploytest.New(t, sb, testRegion)
	prevLog := log.Writer()
	log.SetOutput(&goLog)
	t.Cleanup(func() { log.SetOutput(prevLog) })

	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", envKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secrets["AWS_SECRET_ACCESS_KEY"])
	t.Setenv("AWS_SESSION_TOKEN", secrets["AWS_SESSION_TOKEN"])

	old := f.Image("sec-1", deploytest.ImageOptions{})
	f.Stack("sec", old, deploytest.StackOptions{Desired: 2})
	second := f.Image("sec-2", deploytest.ImageOptions{})
	third := f.Image("sec-3", deploytest.ImageOptions{})
	failing := f.Image("sec-fail", deploytest.ImageOptions{Health: "fail"})

	writeFile := func(src string) string {
		path := filepath.Join(t.TempDir(), "phoenix.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	strategy := "  strategy \"rolling\" {\n    min_healthy_percentage = 50\n    health_timeout = \"3s\"\n  }\n"
	envCfg := writeFile(fmt.Sprintf("environment \"staging\" {\n  region = %q\n  endpoint = %q\n  poll_interval = \"50ms\"\n  target \"web\" {\n    asg = \"sec\"\n  }\n%s}\n", testRegion, endpoint, strategy))
	keys := fmt.Sprintf("  access_key = %q\n  secret_key = %q\n  token = %q\n", hclKey, secrets["phoenix.hcl secret_key"], secrets["phoenix.hcl token"])
	hclCfg := writeFile(fmt.Sprintf("environment \"prod\" {\n  region = %q\n  endpoint = %q\n  poll_interval = \"50ms\"\n%s  target \"web\" {\n    asg = \"sec\"\n  }\n%s}\n", testRegion, endpoint, keys, strategy))
	refusedCfgs := []string{
		// A strategy out of range next to the keys.
		writeFile(fmt.Sprintf("environment \"prod\" {\n  region = %q\n%s  target \"web\" {\n    asg = \"sec\"\n  }\n  strategy \"rolling\" {\n    min_healthy_percentage = 150\n  }\n}\n", testRegion, keys)),
		// A syntax error on the secret's own line.
		writeFile(fmt.Sprintf("environment \"prod\" {\n  region = %q\n  access_key = %q\n  secret_key = %q %q\n  target \"web\" {\n    asg = \"sec\"\n  }\n}\n", testRegion, hclKey, secrets["phoenix.hcl secret_key"], secrets["phoenix.hcl token"])),
		// The secret where a list is expected.
		writeFile(fmt.Sprintf("environment \"prod\" {\n  region = %q\n  access_key = %q\n  secret_key = [%q]\n  target \"web\" {\n    asg = \"sec\"\n  }\n}\n", testRegion, hclKey, secrets["phoenix.hcl secret_key"])),
		// Keys and a profile at once.
		writeFile(fmt.Sprintf("environment \"prod\" {\n  region = %q\n  profile = \"ci\"\n%s  target \"web\" {\n    asg = \"sec\"\n  }\n}\n", testRegion, keys)),
	}

	var printed []string
	cli := func(wantCode int, args ...string) {
		t.Helper()
		out, code, err := runCLI(context.Background(), args...)
		printed = append(printed, out, fmt.Sprint(err))
		if code != wantCode {
			t.Errorf("phoenix %s: exit %d, want %d: %v\n%s", strings.Join(args, " "), code, wantCode, err, out)
		}
	}
	// Credentials from the environment.
	cli(exitOK, "plan", "staging", "--config", envCfg, "--ami", second)
	cli(exitOK, "deploy", "staging", "--config", envCfg, "--ami", second)
	cli(exitOK, "status", "staging", "--config", envCfg, "--output", "json")
	cli(exitRefused, "deploy", "staging", "--config", envCfg, "--ami", second, "--asg", "nope")
	// Credentials in phoenix.hcl.
	cli(exitOK, "plan", "prod", "--config", hclCfg, "--ami", third, "--output", "json")
	cli(exitOK, "deploy", "prod", "--config", hclCfg, "--ami", third, "--output", "json")
	cli(exitOK, "status", "prod", "--config", hclCfg)
	cli(exitFailed, "deploy", "prod", "--config", hclCfg, "--ami", failing)
	cli(exitRefused, "deploy", "prod", "--config", hclCfg, "--ami", "ami-0123456789abcdef0")
	for _, cfg := range refusedCfgs {
		cli(exitRefused, "deploy", "prod", "--config", cfg, "--ami", third)
	}

	// phoenix-ebs bakes an image with keys in its template, and
	// phoenix-deploy rolls it out with keys in its own.
	var ebsUI, deployUI syncBuffer
	var b ebs.Builder
	_, _, err := b.Prepare(map[string]interface{}{
		"region": testRegion, "endpoint": endpoint,
		"access_key": pkrKey, "secret_key": secrets["template secret_key"], "token": secrets["template token"],
		"source_ami_filter": map[string]interface{}{"owners": []string{sandbox.OwnerDebian}, "filters": map[string]string{"name": "debian-12-amd64-*", "architecture": "x86_64"}, "most_recent": true},
		"instance_type":     "t3.micro", "communicator": "none", "ami_name": "sec-{{timestamp}}", "poll_interval": "20ms", "packer_build_name": "sec",
	})
	if err != nil {
		t.Fatalf("phoenix-ebs Prepare: %v", err)
	}
	art, err := b.Run(context.Background(), &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &ebsUI, ErrorWriter: &ebsUI}, &packersdk.MockHook{})
	if err != nil {
		t.Fatalf("phoenix-ebs: %v\n%s", err, ebsUI.String())
	}
	t.Cleanup(func() {
		if err := art.Destroy(); err != nil {
			t.Errorf("destroying the baked image: %v", err)
		}
	})
	var p deploy.PostProcessor
	if err := p.Configure(map[string]interface{}{
		"region": testRegion, "endpoint": endpoint, "access_key": pkrKey, "secret_key": secrets["template secret_key"], "token": secrets["template token"],
		"asg": "sec", "min_healthy_percentage": 50, "health_timeout": "30s", "poll_interval": "50ms",
	}); err != nil {
		t.Fatal(err)
	}
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &deployUI, ErrorWriter: &deployUI}
	if _, _, _, err := p.PostProcess(context.Background(), ui, art); err != nil {
		t.Fatalf("phoenix-deploy: %v\n%s", err, deployUI.String())
	}
	// A refused post-processor: the error may carry the configuration.
	var refusedPP deploy.PostProcessor
	if err := refusedPP.Configure(map[string]interface{}{
		"region": testRegion, "endpoint": endpoint, "access_key": pkrKey, "secret_key": secrets["template secret_key (a refusal)"],
		"asg": "nope", "min_healthy_percentage": 50,
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := refusedPP.PostProcess(context.Background(), ui, art); err == nil {
		t.Error("phoenix-deploy to a group that does not exist succeeded")
	} else {
		printed = append(printed, err.Error())
	}
	if err := (&deploy.PostProcessor{}).Configure(map[string]interface{}{"access_key": pkrKey, "secret_key": secrets["template secret_key (a refusal)"], "profile": "ci", "min_healthy_percentage": 500}); err == nil {
		t.Error("phoenix-deploy accepted keys and a profile")
	} else {
		printed = append(printed, err.Error())
	}

	// The credentials were in use: each reached the sandbox.
	for _, v := range []string{envKey, secrets["AWS_SESSION_TOKEN"], hclKey, secrets["phoenix.hcl token"], pkrKey, secrets["template token"]} {
		if !rec.saw(v) {
			t.Errorf("no request carried %q: the test does not exercise it", v)
		}
	}
	all := map[string]string{
		"phoenix output and errors": strings.Join(printed, "\n"),
		"phoenix-ebs UI":            ebsUI.String(),
		"phoenix-deploy UI":         deployUI.String(),
		"Go log":                    goLog.String(),
		"sandbox log":               sandboxLog.String(),
	}
	for _, want := range []string{"web: succeeded", `"outcome":"succeeded"`, "rolled back", "min_healthy_percentage 150", "profile and access_key cannot both be set"} {
		if !strings.Contains(all["phoenix output and errors"], want) {
			t.Errorf("phoenix output lacks %q: the runs did not happen as planned", want)
		}
	}
	if !strings.Contains(all["phoenix-deploy UI"], "succeeded") || !strings.Contains(all["phoenix-ebs UI"], "AMI") {
		t.Errorf("the Packer components did not run as planned:\n%s\n%s", all["phoenix-ebs UI"], all["phoenix-deploy UI"])
	}
	for where, text := range all {
		for name, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows the %s", where, name)
			}
			// Half of a secret is a leak too.
			if strings.Contains(text, secret[:len(secret)/2]) {
				t.Errorf("%s shows part of the %s", where, name)
			}
		}
	}
}
