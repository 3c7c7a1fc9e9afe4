package sandbox_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/sandboxtest"
)

// An authenticate-oidc action through the unmodified AWS CLI: created on
// an HTTPS listener, described without its client secret, modified with
// UseExistingClientSecret and refused without it; nothing is left.
func TestAWSCLIAuthenticationAction(t *testing.T) {
	awsCLI := testenv.LookPath(t, "aws", "/usr/bin/aws")
	sb := sandboxtest.Start(t)
	vpc, subnets := sb.ELBTestNetwork(elbRegion)
	home := t.TempDir()
	run := func(args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(awsCLI, append([]string{"--endpoint-url", sb.URL(), "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox", "AWS_DEFAULT_REGION="+elbRegion, "AWS_PAGER=",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "HOME="+home, "AWS_MAX_ATTEMPTS=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) map[string]any {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var v map[string]any
		if out != "" {
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		return v
	}
	first := func(v map[string]any, list, field string) string {
		t.Helper()
		items, _ := v[list].([]any)
		if len(items) == 0 {
			t.Fatalf("no %s in %v", list, v)
		}
		s, _ := items[0].(map[string]any)[field].(string)
		return s
	}
	lb := first(must("elbv2", "create-load-balancer", "--name", "cli-auth", "--subnets", subnets[0], subnets[1]), "LoadBalancers", "LoadBalancerArn")
	tg := first(must("elbv2", "create-target-group", "--name", "cli-auth", "--protocol", "HTTP", "--port", "80", "--vpc-id", vpc), "TargetGroups", "TargetGroupArn")
	actions := func(secret string) string {
		return `[{"Type":"authenticate-oidc","Order":1,"AuthenticateOidcConfig":{"Issuer":"https://idp.example.com","AuthorizationEndpoint":"https://idp.example.com/authorize",` +
			`"TokenEndpoint":"https://idp.example.com/token","UserInfoEndpoint":"https://idp.example.com/userinfo","ClientId":"web-client",` + secret +
			`"AuthenticationRequestExtraParams":{"prompt":"login"}}},{"Type":"forward","Order":2,"TargetGroupArn":"` + tg + `"}]`
	}
	listener := first(must("elbv2", "create-listener", "--load-balancer-arn", lb, "--protocol", "HTTPS", "--port", "443",
		"--certificates", "CertificateArn=arn:aws:acm:us-east-1:123456789012:certificate/0b0e6c8f-5a1d-4d3e-9b7c-2f1e0d9c8b7a",
		"--default-actions", actions(`"ClientSecret":"s3cret",`)), "Listeners", "ListenerArn")

	described, _ := run("elbv2", "describe-listeners", "--listener-arns", listener)
	if !strings.Contains(described, `"ClientId": "web-client"`) || !strings.Contains(described, `"prompt": "login"`) || strings.Contains(described, "ClientSecret") || strings.Contains(described, "s3cret") {
		t.Errorf("describe-listeners:\n%s", described)
	}
	if out, err := run("elbv2", "modify-listener", "--listener-arn", listener, "--default-actions", actions("")); err == nil || !strings.Contains(out, "ValidationError") {
		t.Errorf("modify-listener without a secret: %v\n%s", err, out)
	}
	must("elbv2", "modify-listener", "--listener-arn", listener, "--default-actions", actions(`"UseExistingClientSecret":true,`))

	must("elbv2", "delete-listener", "--listener-arn", listener)
	must("elbv2", "delete-load-balancer", "--load-balancer-arn", lb)
	must("elbv2", "delete-target-group", "--target-group-arn", tg)
	sandboxtest.RequireEmptyInventory(t, sb)
}
