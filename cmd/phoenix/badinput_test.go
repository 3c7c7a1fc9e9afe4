package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/builder/ebs"
	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/deploytest"
	"github.com/immutable-infra/packer-plugin-phoenix/post-processor/deploy"
	"github.com/immutable-infra/packer-plugin-phoenix/provisioner/harden"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox"
)

// Kinds of bad input.
const (
	cliInput        = "cli"            // phoenix ARGS…, run in-process
	configInput     = "phoenix.hcl"    // a phoenix.hcl file, parsed and given to phoenix deploy --config
	ebsInput        = "phoenix-ebs"    // a phoenix-ebs source block's body, through Prepare
	hardenInput     = "phoenix-harden" // a phoenix-harden provisioner block's body, through Prepare
	postInput       = "phoenix-deploy" // a phoenix-deploy block's body, through Configure
	postRunInput    = "phoenix-deploy run"
	minBadInputRows = 181
)

// badInput is one malformed input and the one message it must get. In
// args, src, artifact and want, {cfg} and the other names in braces are
// replaced by the test's files, AMIs and sandbox URL.
type badInput struct {
	kind string
	name string
	// args of a phoenix command line (cliInput).
	args []string
	// src is a phoenix.hcl file or a Packer block's body.
	src string
	// artifact is the artifact Id a postRunInput row's PostProcess gets.
	artifact string
	// want is the whole message: the error of a refused command, the
	// single error of a Packer component's Prepare, or the first line of
	// a phoenix.hcl error as reported for a file named phoenix.hcl.
	want string
}

const (
	// ebsBase is a phoenix-ebs source that Prepare accepts.
	ebsBase = `region        = "eu-west-1"
endpoint      = "{url}"
access_key    = "AKIASANDBOXTEST00001"
secret_key    = "sandbox-secret"
source_ami    = "ami-0123456789abcdef0"
instance_type = "t3.micro"
communicator  = "none"
ami_name      = "web-{{timestamp}}"
`
	// postBase is a phoenix-deploy block for the sandbox, without its target.
	postBase = `region        = "eu-west-1"
endpoint      = "{url}"
access_key    = "AKIASANDBOXTEST00001"
secret_key    = "sandbox-secret"
poll_interval = "50ms"
`
	// envHead opens an environment that ParseConfig accepts once closed.
	envHead = "environment \"staging\" {\n  region = \"eu-west-1\"\n  target \"web\" {\n    asg = \"app\"\n  }\n"
)

var strategyOf = func(body string) string {
	return envHead + "  strategy \"rolling\" {\n    " + body + "\n  }\n}\n"
}

// badInputs is the reliability suite's table of malformed input: every row
// must be refused with exactly its message, before any mutating AWS call.
var badInputs = []badInput{
	// The phoenix CLI.
	{kind: cliInput, name: "deploy without --ami", args: []string{"deploy", "staging", "--config", "{cfg}"}, want: "--ami: say which AMI to deploy"},
	{kind: cliInput, name: "plan without --ami", args: []string{"plan", "staging", "--config", "{cfg}"}, want: "--ami: say which AMI to plan for"},
	{kind: cliInput, name: "no environment and no --asg", args: []string{"deploy", "--config", "{cfg}", "--ami", "{ami}"}, want: "say what to deploy to: an environment of {cfg} (phoenix deploy prod …) or --region and --asg"},
	{kind: cliInput, name: "two environments", args: []string{"deploy", "staging", "prod", "--config", "{cfg}", "--ami", "{ami}"}, want: `phoenix deploy: unexpected argument "prod" (usage: phoenix deploy [ENVIRONMENT] --ami AMI [flags])`},
	{kind: cliInput, name: "unknown command", args: []string{"deploi", "staging"}, want: `phoenix: unknown command "deploi" (did you mean deploy?); see phoenix --help`},
	{kind: cliInput, name: "argument to version", args: []string{"version", "extra"}, want: `phoenix version: unexpected argument "extra" (usage: phoenix version [flags])`},
	{kind: cliInput, name: "unknown flag", args: []string{"deploy", "staging", "--config", "{cfg}", "--amy", "{ami}"}, want: "unknown flag: --amy"},
	{kind: cliInput, name: "flag without its value", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami"}, want: "flag needs an argument: --ami"},
	{kind: cliInput, name: "percentage not a number", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--min-healthy-percentage", "most"}, want: `--min-healthy-percentage "most" is not a whole number`},
	{kind: cliInput, name: "min healthy above 100", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--min-healthy-percentage", "150"}, want: "min_healthy_percentage 150 must be between 0 and 100 (--min-healthy-percentage or {cfg})"},
	{kind: cliInput, name: "max healthy above 200", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--max-healthy-percentage", "250"}, want: "max_healthy_percentage 250 must be between 100 and 200 (--max-healthy-percentage or {cfg})"},
	{kind: cliInput, name: "checkpoints not numbers", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--checkpoints", "20,half"}, want: `--checkpoints "20,half" is not a list of whole numbers, e.g. 20,50,100`},
	{kind: cliInput, name: "checkpoints not ascending", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--checkpoints", "50,20,100"}, want: "checkpoints [50 20 100] must be ascending without repeats (--checkpoints or {cfg})"},
	{kind: cliInput, name: "warmup without unit", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--instance-warmup", "5"}, want: `instance_warmup "5" is not a duration (e.g. "90s", "5m") (--instance-warmup or {cfg})`},
	{kind: cliInput, name: "scale-in protected instances misspelt", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--scale-in-protected-instances", "wait"}, want: `scale_in_protected_instances "wait" is not one of Refresh, Ignore, Wait (--scale-in-protected-instances or {cfg})`},
	{kind: cliInput, name: "standby instances Refresh", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--standby-instances", "Refresh"}, want: `standby_instances "Refresh" is not one of Terminate, Ignore, Wait (--standby-instances or {cfg})`},
	{kind: cliInput, name: "standby flag under blue-green", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--standby-instances", "Ignore"}, want: "--standby-instances is a rolling setting; the strategy is blue-green (set --strategy or the environment's strategy block)"},
	{kind: cliInput, name: "bake time not a duration", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--bake-time", "soon"}, want: `bake_time "soon" is not a duration (e.g. "90s", "5m") (--bake-time or {cfg})`},
	{kind: cliInput, name: "health timeout zero", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--health-timeout", "0s"}, want: "health_timeout 0s must be more than 0s and at most 24h (--health-timeout or {cfg})"},
	{kind: cliInput, name: "health timeout two days", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--health-timeout", "48h"}, want: "health_timeout 48h must be more than 0s and at most 24h (--health-timeout or {cfg})"},
	{kind: cliInput, name: "poll interval without unit", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--poll-interval", "5"}, want: `--poll-interval "5" is not a duration, e.g. "10s" or "5m"`},
	{kind: cliInput, name: "bool flag not a bool", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--skip-matching=maybe"}, want: `--skip-matching "maybe" is not true or false`},
	{kind: cliInput, name: "unknown output format", args: []string{"status", "staging", "--config", "{cfg}", "--output", "yaml"}, want: `--output: output format "yaml": use text or json`},
	{kind: cliInput, name: "region not a region", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--region", "mars"}, want: `environment "staging" of {cfg}: region "mars" is not an AWS region name such as us-east-1`},
	{kind: cliInput, name: "endpoint not a URL", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--endpoint", "localhost:4566"}, want: `environment "staging" of {cfg}: endpoint "localhost:4566" is not an http(s) URL`},
	{kind: cliInput, name: "target group not an ARN", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--target-group", "web"}, want: `--target-group: "web" is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)`},
	{kind: cliInput, name: "nonexistent target", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--target", "api"}, want: `target "api" is not in environment "staging" (it has: web)`},
	{kind: cliInput, name: "nonexistent environment", args: []string{"deploy", "prod", "--config", "{cfg}", "--ami", "{ami}"}, want: `environment "prod" is not in {cfg} (it has: staging)`},
	{kind: cliInput, name: "nonexistent config file", args: []string{"deploy", "staging", "--config", "/nonexistent/phoenix.hcl", "--ami", "{ami}"}, want: `environment "staging": /nonexistent/phoenix.hcl not found: pass --config or run where phoenix.hcl is`},
	{kind: cliInput, name: "--asg over several targets", args: []string{"deploy", "staging", "--config", "{cfg2}", "--ami", "{ami}", "--asg", "app"}, want: "--asg, --peer-asg, --listener and --rule override one target: choose it with --target"},
	{kind: cliInput, name: "nonexistent group", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--asg", "nope"}, want: `auto scaling group "nope" not found in eu-west-1: check the target's asg setting and the region`},
	{kind: cliInput, name: "status of a nonexistent group", args: []string{"status", "--region", "eu-west-1", "--endpoint", "{url}", "--asg", "nope"}, want: `auto scaling group "nope" not found in eu-west-1: check the target's asg setting and the region`},
	{kind: cliInput, name: "AMI name instead of id", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "web-2"}, want: `AMI "web-2" is not an AMI id (ami-…)`},
	{kind: cliInput, name: "AMI id in capitals", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "AMI-0123456789ABCDEF0"}, want: `AMI "AMI-0123456789ABCDEF0" is not an AMI id (ami-…)`},
	{kind: cliInput, name: "AMI that does not exist", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "ami-0123456789abcdef0"}, want: "AMI ami-0123456789abcdef0 not found in eu-west-1: copy it to the region first (phoenix promote does) or deploy the region's own AMI"},
	{kind: cliInput, name: "AMI of another region", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{east}"}, want: "AMI {east} not found in eu-west-1: copy it to the region first (phoenix promote does) or deploy the region's own AMI"},
	{kind: cliInput, name: "AMI still pending", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{pending}"}, want: "AMI {pending} (app-3) is pending, not available: wait until it is available and deploy again"},
	{kind: cliInput, name: "unencrypted AMI where encryption is required", args: []string{"deploy", "staging", "--config", "{enc}", "--ami", "{ami}"}, want: "AMI {ami} (app-2) is not admitted by environment staging's policy (1 of 1 rules failed):\n  require_encrypted: {ami} has unencrypted EBS snapshots: deploy an encrypted AMI (phoenix-ebs encrypts by default)"},
	{kind: cliInput, name: "flag taking away the policy's encryption", args: []string{"deploy", "staging", "--config", "{enc}", "--ami", "{ami}", "--require-encrypted=false"}, want: "--require-encrypted=false: environment \"staging\" of {enc} requires encrypted AMIs (its policy), and a flag may add requirements, never take them away"},
	{kind: cliInput, name: "AMI below the policy's hardening score", args: []string{"deploy", "staging", "--config", "{pol}", "--ami", "{ami}"}, want: "AMI {ami} (app-2) is not admitted by environment staging's policy (1 of 1 rules failed):\n  min_hardening_score: {ami} has no phoenix:hardening-score tag (not hardened by phoenix-harden), the minimum is 90"},
	{kind: cliInput, name: "plan of an AMI the policy refuses", args: []string{"plan", "staging", "--config", "{pol}", "--ami", "{ami}"}, want: "AMI {ami} (app-2) is not admitted by environment staging's policy (1 of 1 rules failed):\n  min_hardening_score: {ami} has no phoenix:hardening-score tag (not hardened by phoenix-harden), the minimum is 90"},
	{kind: cliInput, name: "key Auto Scaling's role cannot use", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{cmk}"}, want: "KMS key {key} (alias/bad-input), which encrypts {cmk}, does not let Auto Scaling's service-linked role {role} use it (neither the key policy nor a grant names the role), so every instance the group launches would fail with \"Client.InternalError: Client error on launch\"; {fix}"},
	{kind: cliInput, name: "template pins an SSM parameter version", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--asg", "ssm-pinned"}, want: `auto scaling group "ssm-pinned" launches from launch template {ssmlt} version 1, whose image resolve:ssm:/bad-input/ami:1 pins version 1 of the SSM parameter: a deploy moves the parameter, so the launch template must name it without a version (resolve:ssm:/bad-input/ami) or with a label (resolve:ssm:/bad-input/ami:LABEL)`},
	{kind: cliInput, name: "template's SSM parameter missing", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--asg", "ssm-gone"}, want: "launch template {gonelt} version 1: its image is resolve:ssm:/bad-input/gone, and SSM parameter /bad-input/gone does not exist: every launch would fail; create the parameter (phoenix-ebs ssm_parameter publishes it) or fix the launch template"},
	{kind: cliInput, name: "grant-kms not a bool", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{cmk}", "--grant-kms=perhaps"}, want: `--grant-kms "perhaps" is not true or false`},
	{kind: cliInput, name: "promote grant-kms not a bool", args: []string{"promote", "--from", "staging", "--to", "prod", "--config", "{cfg}", "--grant-kms=perhaps"}, want: `--grant-kms "perhaps" is not true or false`},
	{kind: cliInput, name: "no region anywhere", args: []string{"deploy", "--asg", "app", "--ami", "{ami}", "--endpoint", "{url}"}, want: "flags: no AWS region: set region, AWS_REGION or a profile's region (set --region or the environment's region)"},
	{kind: cliInput, name: "nonexistent profile", args: []string{"deploy", "--asg", "app", "--ami", "{ami}", "--region", "eu-west-1", "--endpoint", "{url}", "--profile", "nope"}, want: "flags: loading AWS configuration: failed to get shared config profile, nope"},
	{kind: cliInput, name: "rollback with nothing to return to", args: []string{"rollback", "staging", "--config", "{cfg}"}, want: `auto scaling group "app" runs launch template {lt} version 1, which phoenix did not create: there is no previous version to roll back to`},
	{kind: cliInput, name: "sandbox time scale zero", args: []string{"sandbox", "--time-scale", "0"}, want: "--time-scale 0: must be greater than 0"},
	{kind: cliInput, name: "sandbox time scale a word", args: []string{"sandbox", "--time-scale", "fast"}, want: `--time-scale "fast" is not a number`},
	{kind: cliInput, name: "sandbox on every address", args: []string{"sandbox", "--listen", "0.0.0.0:4566"}, want: `--listen: listen address "0.0.0.0:4566" is not a loopback address (127.0.0.0/8 or ::1): the sandbox only serves this machine`},
	{kind: cliInput, name: "sandbox account without a key", args: []string{"sandbox", "--account", "210987654321"}, want: `--account "210987654321": want ACCESS_KEY=ACCOUNT_ID`},
	{kind: cliInput, name: "sandbox account not an account id", args: []string{"sandbox", "--account", "PRODKEY=21098"}, want: `--account "PRODKEY=21098": account "21098" is not a 12-digit AWS account id`},
	{kind: cliInput, name: "sandbox trust of a user", args: []string{"sandbox", "--trust-role", "arn:aws:iam::210987654321:user/x=123456789012"}, want: `--trust-role "arn:aws:iam::210987654321:user/x=123456789012": role "arn:aws:iam::210987654321:user/x" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`},
	{kind: cliInput, name: "sandbox organization not an ARN", args: []string{"sandbox", "--organization", "210987654321=o-abcdef1234"}, want: `--organization "210987654321=o-abcdef1234": organization "o-abcdef1234" is not an organization ARN (arn:aws:organizations::<management account>:organization/o-…)`},
	{kind: cliInput, name: "sandbox OU of another organization", args: []string{"sandbox", "--organization", "210987654321=arn:aws:organizations::111122223333:organization/o-abcdef1234,arn:aws:organizations::111122223333:ou/o-zzzzzz9999/ou-ab12-33333333"}, want: `--organization "210987654321=arn:aws:organizations::111122223333:organization/o-abcdef1234,arn:aws:organizations::111122223333:ou/o-zzzzzz9999/ou-ab12-33333333": organizational unit "arn:aws:organizations::111122223333:ou/o-zzzzzz9999/ou-ab12-33333333" is not in organization o-abcdef1234`},
	{kind: cliInput, name: "sandbox trust of no account", args: []string{"sandbox", "--trust-role", "arn:aws:iam::210987654321:role/deploy=me"}, want: `--trust-role "arn:aws:iam::210987654321:role/deploy=me": trusted account "me" is not a 12-digit AWS account id`},

	{kind: cliInput, name: "blue-green flag under rolling", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--steps", "50,100"}, want: "--steps is a blue-green setting; the strategy is rolling (set --strategy or the environment's strategy block)"},
	{kind: cliInput, name: "rolling flag under blue-green", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--checkpoints", "50,100"}, want: "--checkpoints is a rolling setting; the strategy is blue-green (set --strategy or the environment's strategy block)"},
	{kind: cliInput, name: "unknown strategy", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "canary"}, want: `strategy "canary" is not one of rolling, blue-green (--strategy or {cfg})`},
	{kind: cliInput, name: "blue-green without a peer group", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green"}, want: "peer_asg: target \"web\" needs the second colour's Auto Scaling group for blue-green (--peer-asg or {cfg})\nlistener: target \"web\" needs the ARN of the listener that forwards to both colours for blue-green (--listener or {cfg})"},
	{kind: cliInput, name: "listener not an ARN", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "web"}, want: `listener "web" is not a listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID) (--listener or {cfg})`},
	{kind: cliInput, name: "steps not ending at 100", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--steps", "10,50"}, want: "steps [10 50] must end with 100: a switch that stops below 100 leaves traffic split between the colours (--steps or {cfg})"},
	{kind: cliInput, name: "keep_old_for beyond a week", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--keep-old-for", "200h"}, want: "keep_old_for 200h0m0s must be between 0s and 168h (--keep-old-for or {cfg})"},
	{kind: cliInput, name: "ami from a missing SSM parameter", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "resolve:ssm:/app/candidate"}, want: "AMI resolve:ssm:/app/candidate: SSM parameter /app/candidate does not exist in eu-west-1"},
	{kind: cliInput, name: "ami from no SSM parameter", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "resolve:ssm:"}, want: `AMI "resolve:ssm:" names no SSM parameter: write resolve:ssm:NAME, resolve:ssm:NAME:VERSION or resolve:ssm:NAME:LABEL`},
	{kind: cliInput, name: "return-home under rolling", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--return-home"}, want: "--return-home is a blue-green setting; the strategy is rolling (set --strategy or the environment's strategy block)"},
	{kind: cliInput, name: "return-home with keep-old-for", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--return-home", "--keep-old-for", "1h"}, want: "keep_old_for 1h0m0s: with return_home both colours end on the new AMI, so there is no old colour to keep warm; leave keep_old_for out (phoenix rollback then deploys the previous AMI) (--keep-old-for or {cfg})"},
	{kind: cliInput, name: "promote without --to", args: []string{"promote", "--from", "staging", "--config", "{cfg}"}, want: "--to: say which environment to promote to (e.g. --to prod)"},
	{kind: cliInput, name: "promote to itself", args: []string{"promote", "--from", "staging", "--to", "staging", "--config", "{cfg}"}, want: `--from and --to are both "staging": promote brings an AMI from one environment to another`},
	{kind: cliInput, name: "prune keeping nothing", args: []string{"images", "prune", "staging", "--config", "{cfg}", "--family", "app", "--keep", "0"}, want: "keep 0: at least 1 image must be kept, rollbacks need one (--keep)"},
	{kind: cliInput, name: "prune without a family", args: []string{"images", "prune", "staging", "--config", "{cfg}", "--keep", "3"}, want: "family: say which image family to prune (--family)"},

	// phoenix.hcl.
	{kind: configInput, name: "syntax error", src: "environment \"staging\" {\n  region = \n}\n", want: "phoenix.hcl:2,12: Invalid expression: Expected the start of an expression, but found an invalid expression token."},
	{kind: configInput, name: "unknown block", src: "env \"staging\" {\n}\n", want: `phoenix.hcl:1,1: Unsupported block type: Blocks of type "env" are not expected here.`},
	{kind: configInput, name: "environment without a name", src: "environment {\n  target \"web\" { asg = \"app\" }\n}\n", want: "phoenix.hcl:1,13: Missing name for environment: All environment blocks must have 1 labels (name)."},
	{kind: configInput, name: "unknown setting", src: envHead + "  colour = \"blue\"\n}\n", want: `phoenix.hcl:6,3: Unsupported argument: An argument named "colour" is not expected here.`},
	{kind: configInput, name: "no target", src: "environment \"staging\" {\n  region = \"eu-west-1\"\n}\n", want: `phoenix.hcl:1,1: No target: Environment "staging" needs at least one target "NAME" { asg = "…" } block.`},
	{kind: configInput, name: "policy score above 100", src: envHead + "  policy {\n    min_hardening_score = 150\n  }\n}\n", want: "phoenix.hcl:7,27: Invalid min_hardening_score: min_hardening_score 150 is out of range: phoenix-harden scores from 0 to 100"},
	{kind: configInput, name: "policy age not a duration", src: envHead + "  policy {\n    max_age = \"a month\"\n  }\n}\n", want: "phoenix.hcl:7,15: Invalid max_age: max_age \"a month\" must be a positive number of days (\"30d\") or a duration (\"720h\")"},
	{kind: configInput, name: "policy owner not an account", src: envHead + "  policy {\n    allowed_owners = [\"me\"]\n  }\n}\n", want: "phoenix.hcl:7,22: Invalid allowed_owners: allowed_owners: \"me\" is not an AWS account id (12 digits)"},
	{kind: configInput, name: "policy tag pattern unclosed", src: envHead + "  policy {\n    required_tags = { Team = \"[web\" }\n  }\n}\n", want: "phoenix.hcl:7,21: Invalid required_tags: required_tags: the pattern \"[web\" for tag \"Team\" is not a valid pattern (*, ?, [a-z]): syntax error in pattern"},
	{kind: configInput, name: "policy promoted from nowhere", src: envHead + "  policy {\n    promoted_from = \"qa\"\n  }\n}\n", want: "phoenix.hcl:7,21: Invalid promoted_from: promoted_from \"qa\" is not an environment of this file (it has: staging)"},
	{kind: configInput, name: "policy promoted from itself", src: envHead + "  policy {\n    promoted_from = \"staging\"\n  }\n}\n", want: "phoenix.hcl:7,21: Invalid promoted_from: promoted_from \"staging\" is the environment itself: name the environment an AMI must have been live in first"},
	{kind: configInput, name: "policy unknown rule", src: envHead + "  policy {\n    min_score = 90\n  }\n}\n", want: "phoenix.hcl:7,5: Unsupported argument: An argument named \"min_score\" is not expected here."},
	{kind: configInput, name: "two policy blocks", src: envHead + "  policy {\n  }\n  policy {\n  }\n}\n", want: "phoenix.hcl:8,3: More than one policy: Environment \"staging\" may have one policy block."},
	{kind: configInput, name: "target without asg", src: "environment \"staging\" {\n  target \"web\" {\n  }\n}\n", want: `phoenix.hcl:2,16: Missing required argument: The argument "asg" is required, but no definition was found.`},
	{kind: configInput, name: "empty asg", src: "environment \"staging\" {\n  target \"web\" {\n    asg = \"\"\n  }\n}\n", want: `phoenix.hcl:2,3: Empty asg: Target "web" needs the name of its Auto Scaling group in asg.`},
	{kind: configInput, name: "duplicate target", src: envHead + "  target \"web\" {\n    asg = \"app-2\"\n  }\n}\n", want: `phoenix.hcl:6,3: Duplicate target "web"`},
	{kind: configInput, name: "duplicate environment", src: envHead + "}\n" + envHead + "}\n", want: `phoenix.hcl:7,1: Duplicate environment "staging": Environment "staging" is already defined at phoenix.hcl:1,1-22.`},
	{kind: configInput, name: "target group not an ARN", src: "environment \"staging\" {\n  target \"web\" {\n    asg           = \"app\"\n    target_groups = [\"web\"]\n  }\n}\n", want: `phoenix.hcl:2,3: Invalid target_groups: target_groups: "web" is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)`},
	{kind: configInput, name: "region not a region", src: "environment \"staging\" {\n  region = \"mars\"\n  target \"web\" {\n    asg = \"app\"\n  }\n}\n", want: `phoenix.hcl:2,12: Invalid region: region "mars" is not an AWS region name such as us-east-1`},
	{kind: configInput, name: "endpoint not a URL", src: envHead + "  endpoint = \"localhost:4566\"\n}\n", want: `phoenix.hcl:6,14: Invalid endpoint: endpoint "localhost:4566" is not an http(s) URL`},
	{kind: configInput, name: "access key without secret key", src: envHead + "  access_key = \"AKIASANDBOXTEST00001\"\n}\n", want: "phoenix.hcl:6,16: Invalid access_key: access_key and secret_key must be set together"},
	{kind: configInput, name: "profile and keys", src: envHead + "  profile    = \"ci\"\n  access_key = \"AKIASANDBOXTEST00001\"\n  secret_key = \"sandbox-secret\"\n}\n", want: "phoenix.hcl:6,16: Invalid profile: profile and access_key cannot both be set: choose one source of credentials"},
	{kind: configInput, name: "negative max_retries", src: envHead + "  max_retries = -1\n}\n", want: "phoenix.hcl:6,17: Invalid max_retries: max_retries -1 must be 0 or more"},
	{kind: configInput, name: "role not an ARN", src: envHead + "  assume_role {\n    role_arn = \"admin\"\n  }\n}\n", want: `phoenix.hcl:1,1: Invalid assume_role: assume_role.role_arn "admin" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)`},
	{kind: configInput, name: "role duration not a duration", src: envHead + "  assume_role {\n    role_arn = \"arn:aws:iam::123456789012:role/deploy\"\n    duration = \"forever\"\n  }\n}\n", want: `phoenix.hcl:1,1: Invalid assume_role: assume_role.duration "forever" is not a duration (e.g. "1h")`},
	{kind: configInput, name: "kms key not a key", src: envHead + "  kms_key_id = \"my-key\"\n}\n", want: `phoenix.hcl:1,1: Invalid kms_key_id: kms_key_id "my-key" is not a KMS key id, key ARN or alias (alias/NAME)`},
	{kind: configInput, name: "grant_kms not a bool", src: envHead + "  grant_kms = \"perhaps\"\n}\n", want: "phoenix.hcl:6,16: Unsuitable value type: Unsuitable value: a bool is required"},
	{kind: configInput, name: "poll interval not a duration", src: envHead + "  poll_interval = \"fast\"\n}\n", want: `phoenix.hcl:6,19: Invalid poll_interval: poll_interval "fast" must be a positive duration (e.g. "10s")`},
	{kind: configInput, name: "unknown strategy", src: envHead + "  strategy \"canary\" {}\n}\n", want: `phoenix.hcl:6,3: Unknown strategy "canary": Known strategies: rolling, blue-green.`},
	{kind: configInput, name: "two strategies", src: envHead + "  strategy \"rolling\" {}\n  strategy \"rolling\" {}\n}\n", want: `phoenix.hcl:7,3: More than one strategy: Environment "staging" may have one strategy block.`},
	{kind: configInput, name: "unknown strategy setting", src: strategyOf("surge = 2"), want: `phoenix.hcl:7,5: Unsupported argument: An argument named "surge" is not expected here.`},
	{kind: configInput, name: "percentage as a word", src: strategyOf(`min_healthy_percentage = "most"`), want: "phoenix.hcl:7,31: Unsuitable value type: Unsuitable value: a number is required"},
	{kind: configInput, name: "min healthy above 100", src: strategyOf("min_healthy_percentage = 150"), want: "phoenix.hcl:7,30: Invalid min_healthy_percentage: min_healthy_percentage 150 must be between 0 and 100"},
	{kind: configInput, name: "max healthy below 100", src: strategyOf("max_healthy_percentage = 99"), want: "phoenix.hcl:7,30: Invalid max_healthy_percentage: max_healthy_percentage 99 must be between 100 and 200"},
	{kind: configInput, name: "checkpoints stop short", src: strategyOf("checkpoints = [20, 50]"), want: "phoenix.hcl:7,19: Invalid checkpoints: checkpoints [20 50] must end with 100: a refresh whose last checkpoint is below 100 stops there, leaving old instances behind"},
	{kind: configInput, name: "bake time not a duration", src: strategyOf(`bake_time = "soon"`), want: `phoenix.hcl:7,17: Invalid bake_time: bake_time "soon" is not a duration (e.g. "90s", "5m")`},
	{kind: configInput, name: "scale-in protected instances unknown", src: strategyOf(`scale_in_protected_instances = "Replace"`), want: `phoenix.hcl:7,36: Invalid scale_in_protected_instances: scale_in_protected_instances "Replace" is not one of Refresh, Ignore, Wait`},
	{kind: configInput, name: "standby instances not a string", src: strategyOf(`standby_instances = ["Wait"]`), want: "phoenix.hcl:7,25: Unsuitable value type: Unsuitable value: string required"},
	{kind: configInput, name: "standby instances unknown", src: strategyOf(`standby_instances = "Refresh"`), want: `phoenix.hcl:7,25: Invalid standby_instances: standby_instances "Refresh" is not one of Terminate, Ignore, Wait`},
	{kind: configInput, name: "health timeout two days", src: strategyOf(`health_timeout = "48h"`), want: "phoenix.hcl:7,22: Invalid health_timeout: health_timeout 48h must be more than 0s and at most 24h"},

	{kind: configInput, name: "blue-green without its peer", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {}\n}\n", want: `phoenix.hcl:2,3: Invalid peer_asg: peer_asg: target "web" needs the second colour's Auto Scaling group for blue-green`},
	{kind: configInput, name: "blue-green peer is the group itself", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {}\n}\n", want: `phoenix.hcl:2,3: Invalid peer_asg: peer_asg "app" is the target's asg: blue-green needs two different groups`},
	{kind: configInput, name: "blue-green listener not an ARN", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app-green\"\n    listener = \"web:80\"\n  }\n  strategy \"blue-green\" {}\n}\n", want: `phoenix.hcl:2,3: Invalid listener: listener "web:80" is not a listener ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)`},
	{kind: configInput, name: "peer_asg with the rolling strategy", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app-green\"\n  }\n}\n", want: `phoenix.hcl:2,3: Invalid peer_asg: peer_asg is a blue-green setting, but target "web" is deployed with the rolling strategy: set strategy "blue-green" or remove peer_asg`},
	{kind: configInput, name: "blue-green steps out of order", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app-green\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {\n    steps = [50, 10, 100]\n  }\n}\n", want: "phoenix.hcl:8,13: Invalid steps: steps [50 10 100] must be ascending without repeats"},
	{kind: configInput, name: "blue-green return_home not a bool", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app-green\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {\n    return_home = \"blue\"\n  }\n}\n", want: "phoenix.hcl:8,20: Unsuitable value type: Unsuitable value: a bool is required"},
	{kind: configInput, name: "blue-green keep_old_for not a duration", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app-green\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {\n    keep_old_for = \"a while\"\n  }\n}\n", want: `phoenix.hcl:8,20: Invalid keep_old_for: keep_old_for "a while" is not a duration (e.g. "90s", "5m")`},
	{kind: cliInput, name: "steps not numbers", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--steps", "10,all"}, want: `--steps "10,all" is not a list of whole numbers, e.g. 20,50,100`},

	// Packer templates: the body of a phoenix-ebs source.
	{kind: ebsInput, name: "no source AMI", src: strings.Replace(ebsBase, `source_ami    = "ami-0123456789abcdef0"`, "", 1), want: "source_ami or source_ami_filter is required"},
	{kind: ebsInput, name: "source AMI a name", src: strings.Replace(ebsBase, "ami-0123456789abcdef0", "debian-12", 1), want: `source_ami "debian-12" is not an AMI id (ami-…)`},
	{kind: ebsInput, name: "region not a region", src: strings.Replace(ebsBase, "eu-west-1", "mars", 1), want: `region "mars" is not an AWS region name such as us-east-1`},
	{kind: ebsInput, name: "copy region not a region", src: ebsBase + `ami_regions = ["us-east-1", "moon"]`, want: `ami_regions: "moon" is not an AWS region name`},
	{kind: ebsInput, name: "snapshot_users not an account", src: ebsBase + "kms_key_id = \"alias/images\"\nsnapshot_users = [\"21098\"]", want: `snapshot_users: "21098" is not a 12-digit account id`},
	{kind: ebsInput, name: "snapshot_groups not all", src: ebsBase + `snapshot_groups = ["friends"]`, want: `snapshot_groups: "friends" is not a group; the only group is "all"`},
	{kind: ebsInput, name: "encrypted snapshots public", src: ebsBase + `snapshot_groups = ["all"]`, want: `snapshot_groups: encrypted snapshots cannot be made public ("all"); share them with snapshot_users, or set encrypt = false`},
	{kind: ebsInput, name: "snapshot_users under aws/ebs", src: ebsBase + `snapshot_users = ["210987654321"]`, want: "snapshot_users needs kms_key_id set to a customer managed key: snapshots encrypted under the AWS managed key (alias/aws/ebs) cannot be shared"},
	{kind: ebsInput, name: "IMDSv1", src: ebsBase + `imds_support = "v1"`, want: `imds_support "v1" must be "v2.0" or ""`},
	{kind: ebsInput, name: "http_tokens neither", src: ebsBase + "metadata_options {\n  http_tokens = \"maybe\"\n}", want: `metadata_options.http_tokens "maybe" must be one of required, optional`},
	{kind: ebsInput, name: "deprecate_after not a duration", src: ebsBase + `deprecate_after = "soon"`, want: `deprecate_after "soon" is not a duration (e.g. "90s", "5m")`},
	{kind: ebsInput, name: "timeout not a duration", src: ebsBase + `ami_ready_timeout = "later"`, want: `ami_ready_timeout "later" is not a duration (e.g. "90s", "5m")`},
	{kind: ebsInput, name: "negative timeout", src: ebsBase + `ami_ready_timeout = "-1m"`, want: "ami_ready_timeout -1m0s must be positive"},
	{kind: ebsInput, name: "KMS key without encryption", src: ebsBase + "encrypt    = false\nkms_key_id = \"alias/images\"", want: "kms_key_id requires encrypt = true"},
	{kind: ebsInput, name: "role duration not a duration", src: ebsBase + "assume_role {\n  role_arn = \"arn:aws:iam::123456789012:role/packer\"\n  duration = \"forever\"\n}", want: `assume_role.duration "forever" is not a duration (e.g. "1h")`},
	{kind: ebsInput, name: "AMI name with a bang", src: strings.Replace(ebsBase, "web-{{timestamp}}", "web!", 1), want: `ami_name "web!" must be 3 to 128 characters of letters, digits, spaces and ( ) [ ] . / - ' @ _`},
	{kind: ebsInput, name: "SSM parameter name with levels but no leading slash", src: ebsBase + "ssm_parameter {\n  name = \"web/ami\"\n}", want: `ssm_parameter[0].name "web/ami" has levels, so it must begin with a /: "/web/ami"`},
	{kind: ebsInput, name: "SSM parameter in a region not built", src: ebsBase + "ssm_parameter {\n  name   = \"/web/ami\"\n  region = \"us-east-1\"\n}", want: `ssm_parameter[0].region "us-east-1" is not a region this build makes an AMI in (eu-west-1): add it to ami_regions`},
	{kind: ebsInput, name: "unknown setting", src: ebsBase + `colour = "blue"`, want: `build.pkr.hcl:9,1-7: Unsupported argument; An argument named "colour" is not expected here.`},

	// The body of a phoenix-harden provisioner.
	{kind: hardenInput, name: "score above 100", src: "min_score = 101", want: "min_score: 101 is not between 0 and 100"},
	{kind: hardenInput, name: "unknown phase", src: `phase = "verify"`, want: `phase: "verify" is not "apply" or "cleanup"`},
	{kind: hardenInput, name: "unknown profile", src: `profile = "cis-level2"`, want: `profile: "cis-level2" is not one of baseline, cis-level1, none`},
	{kind: hardenInput, name: "misspelt param", src: "params = {\n  allow_ip_forwad = true\n}", want: `params: unknown param "allow_ip_forwad" (did you mean "allow_ip_forward"?) (known: allow_ip_forward, disable_squashfs, install_packages, ssh_allow_users)`},
	{kind: hardenInput, name: "skip of an unknown control", src: "skip {\n  id     = \"ssh-cipher\"\n  reason = \"legacy clients\"\n}", want: `skip[0]: unknown control id "ssh-cipher" (did you mean "ssh-ciphers"?)`},
	{kind: hardenInput, name: "skip without a reason", src: "skip {\n  id     = \"ssh-ciphers\"\n  reason = \" \"\n}", want: `skip[0]: reason for skipping "ssh-ciphers" is empty; say why the control does not apply`},

	// The body of a phoenix-deploy post-processor.
	{kind: postInput, name: "no target at all", src: postBase, want: "set environment (an environment of config_file) or asg (an Auto Scaling group)"},
	{kind: postInput, name: "config file without environment", src: postBase + "asg = \"app\"\nconfig_file = \"phoenix.hcl\"", want: "config_file is set without environment: name the environment to deploy to"},
	{kind: postInput, name: "min healthy above 100", src: postBase + "asg = \"app\"\nmin_healthy_percentage = 120", want: "min_healthy_percentage 120 must be between 0 and 100"},
	{kind: postInput, name: "checkpoints stop short", src: postBase + "asg = \"app\"\ncheckpoints = [20, 50]", want: "checkpoints [20 50] must end with 100: a refresh whose last checkpoint is below 100 stops there, leaving old instances behind"},
	{kind: postInput, name: "target group not an ARN", src: postBase + "asg = \"app\"\ntarget_groups = [\"web\"]", want: `target_groups: "web" is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)`},
	{kind: postInput, name: "region not a region", src: strings.Replace(postBase, "eu-west-1", "mars", 1) + "asg = \"app\"", want: `region "mars" is not an AWS region name such as us-east-1`},
	{kind: postInput, name: "poll interval without unit", src: strings.Replace(postBase, "50ms", "5", 1) + "asg = \"app\"", want: `poll_interval "5" must be a positive duration (e.g. "10s")`},
	{kind: postInput, name: "grant_kms not a bool", src: postBase + "asg = \"app\"\ngrant_kms = \"perhaps\"", want: `build.pkr.hcl:7,13-22: Incorrect attribute value type; Inappropriate value for attribute "grant_kms": a bool is required.`},
	{kind: postInput, name: "scale-in protected instances unknown", src: postBase + "asg = \"app\"\nscale_in_protected_instances = \"Terminate\"", want: `scale_in_protected_instances "Terminate" is not one of Refresh, Ignore, Wait`},
	{kind: postInput, name: "standby instances lower case", src: postBase + "asg = \"app\"\nstandby_instances = \"ignore\"", want: `standby_instances "ignore" is not one of Terminate, Ignore, Wait`},
	{kind: postInput, name: "health timeout zero", src: postBase + "asg = \"app\"\nhealth_timeout = \"0s\"", want: "health_timeout 0s must be more than 0s and at most 24h"},

	{kind: postInput, name: "policy score below 0", src: postBase + "asg = \"app\"\npolicy {\n  min_hardening_score = -1\n}", want: "policy: min_hardening_score -1 is out of range: phoenix-harden scores from 0 to 100"},
	{kind: postInput, name: "policy promoted from without environment", src: postBase + "asg = \"app\"\npolicy {\n  promoted_from = \"staging\"\n}", want: "policy: promoted_from names an environment of config_file: set environment too"},
	{kind: postInput, name: "policy age in months", src: postBase + "asg = \"app\"\npolicy {\n  max_age = \"2mo\"\n}", want: "policy: max_age \"2mo\" must be a positive number of days (\"30d\") or a duration (\"720h\")"},
	{kind: postRunInput, name: "AMI the post-processor's own policy refuses", src: postBase + "asg = \"app\"\npolicy {\n  required_tags = { team = \"web\" }\n}", artifact: "eu-west-1:{ami}", want: "phoenix-deploy of {ami} to \"app\" (refused): AMI {ami} (app-2) is not admitted by the policy (1 of 1 rules failed):\n  required_tags: {ami} has no tag team (required: \"web\")"},
	{kind: postRunInput, name: "AMI the environment's policy refuses", src: "environment = \"staging\"\nconfig_file = \"{pol}\"", artifact: "eu-west-1:{ami}", want: "phoenix-deploy of {ami} to \"app\" (refused): AMI {ami} (app-2) is not admitted by environment staging's policy (1 of 1 rules failed):\n  min_hardening_score: {ami} has no phoenix:hardening-score tag (not hardened by phoenix-harden), the minimum is 90"},
	// phoenix-deploy blocks that Configure accepts, refused by PostProcess.
	// Metric gates (alarms, the canary judge).
	{kind: cliInput, name: "unknown alarm", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--alarm", "app-5XX"}, want: "alarms: no CloudWatch metric alarm named \"app-5XX\" in eu-west-1 (names are case-sensitive)"},
	{kind: cliInput, name: "judge under rolling", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--judge"}, want: "--judge is a blue-green setting; the strategy is rolling (set --strategy or the environment's strategy block)"},
	{kind: cliInput, name: "judge 5xx increase above 100", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--steps", "10,100", "--judge-max-5xx-increase", "150"}, want: "judge_max_5xx_increase 150 must be between 0 and 100 (percentage points) (--judge-max-5xx-increase or {cfg})"},
	{kind: cliInput, name: "judge latency ratio below 1", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--steps", "10,100", "--judge-max-latency-ratio", "0.5"}, want: "judge_max_latency_ratio 0.5 must be between 1 and 100 (--judge-max-latency-ratio or {cfg})"},
	{kind: cliInput, name: "judge statistic unknown", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--steps", "10,100", "--judge-latency-statistic", "p50"}, want: "judge_latency_statistic \"p50\" must be p99 or Average (--judge-latency-statistic or {cfg})"},
	{kind: cliInput, name: "judge min requests zero", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--steps", "10,100", "--judge-min-requests", "0"}, want: "judge_min_requests 0 must be between 1 and 1000000 (--judge-min-requests or {cfg})"},
	{kind: cliInput, name: "judge without a split step", args: []string{"plan", "staging", "--config", "{cfg}", "--ami", "{ami}", "--strategy", "blue-green", "--peer-asg", "app-green", "--listener", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef", "--judge"}, want: "judge: steps [100] move all traffic at once, so there is no step where both colours serve to compare; set steps such as [10, 50, 100] (--judge or {cfg})"},
	{kind: cliInput, name: "alarm named twice", args: []string{"deploy", "staging", "--config", "{cfg}", "--ami", "{ami}", "--alarm", "a", "--alarm", "a"}, want: "alarms: \"a\" is named twice (--alarm or {cfg})"},
	{kind: configInput, name: "judge in a rolling block", src: envHead + "  strategy \"rolling\" {\n    judge = true\n  }\n}\n", want: "phoenix.hcl:7,5: Unsupported argument: An argument named \"judge\" is not expected here."},
	{kind: configInput, name: "blue-green judge ratio out of range", src: "environment \"staging\" {\n  target \"web\" {\n    asg      = \"app\"\n    peer_asg = \"app-green\"\n    listener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\n  }\n  strategy \"blue-green\" {\n    steps = [10, 100]\n    judge_max_latency_ratio = 500\n  }\n}\n", want: "phoenix.hcl:9,31: Invalid judge_max_latency_ratio: judge_max_latency_ratio 500 must be between 1 and 100"},
	{kind: postInput, name: "judge under rolling", src: postBase + "asg = \"app\"\njudge_min_requests = 50", want: "judge_min_requests: the canary judge compares two colours and is a blue-green setting; the strategy is rolling (use alarms to gate a rolling deploy)"},
	{kind: postInput, name: "judge 5xx increase negative", src: postBase + "asg = \"app\"\npeer_asg = \"app-green\"\nlistener = \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef\"\nsteps = [10, 100]\njudge_max_5xx_increase = -1", want: "judge_max_5xx_increase -1 must be between 0 and 100 (percentage points)"},
	{kind: postRunInput, name: "unknown alarm", src: postBase + "asg = \"app\"\nalarms = [\"app-nope\"]", artifact: "eu-west-1:{ami}", want: "phoenix-deploy of {ami} to \"app\" (refused): alarms: no CloudWatch metric alarm named \"app-nope\" in eu-west-1 (names are case-sensitive)"},

	{kind: postRunInput, name: "environment not in the file", src: "environment = \"prod\"\nconfig_file = \"{cfg}\"", artifact: "eu-west-1:{ami}", want: `environment "prod" is not in {cfg} (it has: staging)`},
	{kind: postRunInput, name: "config file missing", src: "environment = \"staging\"\nconfig_file = \"/nonexistent/phoenix.hcl\"", artifact: "eu-west-1:{ami}", want: `config_file /nonexistent/phoenix.hcl not found (environment "staging")`},
	{kind: postRunInput, name: "nonexistent group", src: postBase + "asg = \"nope\"", artifact: "eu-west-1:{ami}", want: `phoenix-deploy of {ami} to "nope" (refused): auto scaling group "nope" not found in eu-west-1: check the target's asg setting and the region`},
	{kind: postRunInput, name: "key Auto Scaling's role cannot use", src: postBase + "asg = \"app\"", artifact: "eu-west-1:{cmk}", want: "phoenix-deploy of {cmk} to \"app\" (refused): KMS key {key} (alias/bad-input), which encrypts {cmk}, does not let Auto Scaling's service-linked role {role} use it (neither the key policy nor a grant names the role), so every instance the group launches would fail with \"Client.InternalError: Client error on launch\"; {fix}"},
	{kind: postRunInput, name: "artifact without the target's region", src: postBase + "asg = \"app\"", artifact: "us-east-1:{east}", want: `the mitchellh.amazonebs artifact has no AMI in eu-west-1, the region of target "app" (it has AMIs in: us-east-1): add the region to the build's ami_regions or deploy to one of those`},
	{kind: postRunInput, name: "artifact not an AMI", src: postBase + "asg = \"app\"", artifact: "output/disk.img", want: `phoenix-deploy takes an AMI artifact; the mitchellh.amazonebs artifact: artifact id "output/disk.img" is not region:ami-…[,region:ami-…]`},
}

func TestBadInputs(t *testing.T) {
	if len(badInputs) < minBadInputRows {
		t.Fatalf("the table has %d bad inputs, the reliability suite needs at least %d", len(badInputs), minBadInputRows)
	}
	kinds := map[string]int{}
	inputs := map[string]string{} // each row's input -> its name: no input twice
	for _, row := range badInputs {
		kinds[row.kind]++
		in := fmt.Sprintf("%s %q %q %q", row.kind, row.args, row.src, row.artifact)
		if other, ok := inputs[in]; ok {
			t.Errorf("rows %q and %q are the same input", other, row.name)
		}
		inputs[in] = row.name
	}
	for _, k := range []string{cliInput, configInput, ebsInput, hardenInput, postInput, postRunInput} {
		if kinds[k] == 0 {
			t.Errorf("no bad input of kind %s", k)
		}
	}

	f := deploytest.New(t, nil, testRegion)
	old := f.Image("app-1", deploytest.ImageOptions{})
	st := f.Stack("app", old, deploytest.StackOptions{Desired: 1})
	plain := f.Image("app-2", deploytest.ImageOptions{})
	east := deploytest.New(t, f.SB, "us-east-1").Image("app-east", deploytest.ImageOptions{})
	if err := f.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy": 1e6}}); err != nil {
		t.Fatal(err)
	}
	pending := f.Image("app-3", deploytest.ImageOptions{Pending: true})
	if err := f.SB.SetTiming(sandbox.TimingProfile{Seconds: map[string]float64{"image_copy": 180}}); err != nil {
		t.Fatal(err)
	}
	ssmPinned := ssmStack(t, f, "ssm-pinned", "/bad-input/ami", old, "resolve:ssm:/bad-input/ami:1")
	ssmGone := ssmStack(t, f, "ssm-gone", "/bad-input/gone", old, "resolve:ssm:/bad-input/gone")
	if _, err := f.Clients.SSM.DeleteParameter(context.Background(), &ssm.DeleteParameterInput{Name: aws.String("/bad-input/gone")}); err != nil {
		t.Fatal(err)
	}
	key := f.KMSKey("alias/bad-input")
	cmk := f.Image("app-4", deploytest.ImageOptions{KMSKey: key})
	fix := fmt.Sprintf(`add to its key policy the statements AWS documents for Auto Scaling's role:
    {"Sid": "Allow Auto Scaling to use the key", "Effect": "Allow", "Principal": {"AWS": "%[1]s"},
     "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
    {"Sid": "Allow Auto Scaling to attach the volumes", "Effect": "Allow", "Principal": {"AWS": "%[1]s"},
     "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}
  or grant it:
    aws kms create-grant --region %[2]s --key-id %[3]s --grantee-principal %[1]s --operations Encrypt Decrypt ReEncryptFrom ReEncryptTo GenerateDataKey GenerateDataKeyWithoutPlaintext DescribeKey CreateGrant
  or set grant_kms = true (phoenix.hcl, phoenix-deploy) or --grant-kms, and phoenix creates that grant`, deploytest.AutoScalingRole, testRegion, key)
	cfg := writeConfig(t, f, "app", "")
	enc := writeConfig(t, f, "app", "  require_encrypted = true\n")
	pol := writeConfig(t, f, "app", "  policy {\n    min_hardening_score = 90\n  }\n")
	cfg2 := writeConfig(t, f, "app", "  target \"api\" {\n    asg = \"api\"\n  }\n")
	vars := strings.NewReplacer("{cfg}", cfg, "{cfg2}", cfg2, "{enc}", enc, "{pol}", pol, "{ami}", plain, "{east}", east, "{pending}", pending, "{url}", f.SB.URL(), "{lt}", st.Template,
		"{cmk}", cmk, "{key}", key, "{ssmlt}", ssmPinned, "{gonelt}", ssmGone, "{role}", deploytest.AutoScalingRole, "{fix}", fix)

	// No region, credentials or profile from the machine running the test.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASANDBOXTEST00001")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sandbox-secret")
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}

	for _, row := range badInputs {
		t.Run(row.kind+"/"+row.name, func(t *testing.T) {
			want := vars.Replace(row.want)
			f.SB.ResetCalls()
			var got string
			switch row.kind {
			case cliInput:
				got = refusedByCLI(t, expand(vars, row.args)...)
			case configInput:
				got = refusedConfig(t, row.src)
				// The same file through the CLI, which names it by its path.
				path := filepath.Join(t.TempDir(), "phoenix.hcl")
				if err := os.WriteFile(path, []byte(row.src), 0o644); err != nil {
					t.Fatal(err)
				}
				first := strings.SplitN(refusedByCLI(t, "deploy", "staging", "--config", path, "--ami", plain), "\n", 2)[0]
				if w := strings.ReplaceAll(want, "phoenix.hcl:", path+":"); first != w {
					t.Errorf("phoenix deploy --config says:\n  %s\nwant:\n  %s", first, w)
				}
			case ebsInput:
				var b ebs.Builder
				got = refusedByPacker(t, b.ConfigSpec(), vars.Replace(row.src), func(raws ...interface{}) error { _, _, err := b.Prepare(raws...); return err })
			case hardenInput:
				var p harden.Provisioner
				got = refusedByPacker(t, p.ConfigSpec(), vars.Replace(row.src), p.Prepare)
			case postInput:
				var p deploy.PostProcessor
				got = refusedByPacker(t, p.ConfigSpec(), vars.Replace(row.src), p.Configure)
			case postRunInput:
				got = refusedByPostProcess(t, vars.Replace(row.src), vars.Replace(row.artifact))
			default:
				t.Fatalf("unknown kind %q", row.kind)
			}
			if got != want {
				t.Errorf("message:\n  %s\nwant:\n  %s", got, want)
			}
			if m := f.Mutating(); m != 0 {
				t.Errorf("%d mutating AWS calls: %v", m, f.SB.Calls())
			}
			if row.kind == ebsInput || row.kind == hardenInput || row.kind == postInput {
				if calls := f.SB.Calls(); len(calls) != 0 {
					t.Errorf("Prepare made AWS calls: %v", calls)
				}
			}
		})
	}
}

func expand(r *strings.Replacer, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// refusedByCLI runs phoenix and returns its message, failing unless the
// command was refused (exit 3).
func refusedByCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, code, err := runCLI(context.Background(), args...)
	if code != exitRefused {
		t.Fatalf("phoenix %s: exit %d, want %d (refused): %v\n%s", strings.Join(args, " "), code, exitRefused, err, out)
	}
	return err.Error()
}

// refusedConfig parses src as phoenix.hcl and returns the first line of
// the refusal.
func refusedConfig(t *testing.T, src string) string {
	t.Helper()
	_, err := deployer.ParseConfig([]byte(src), "phoenix.hcl")
	if err == nil {
		t.Fatal("phoenix.hcl accepted")
	}
	if o := deployer.OutcomeOf(err); o != deployer.Refused {
		t.Errorf("outcome %v, want refused", o)
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// refusedByPacker does with a component's block body what Packer core
// does: decode it with the component's ConfigSpec and hand the value to
// prepare. It returns the single error prepare reports.
func refusedByPacker(t *testing.T, spec hcldec.ObjectSpec, src string, prepare func(...interface{}) error) string {
	t.Helper()
	f, diags := hclsyntax.ParseConfig([]byte(src), "build.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the row's HCL: %v", diags)
	}
	val, diags := hcldec.Decode(f.Body, spec, nil)
	if diags.HasErrors() {
		return diags.Error()
	}
	err := prepare(val)
	if err == nil {
		t.Fatal("accepted")
	}
	var me *packersdk.MultiError
	if errors.As(err, &me) {
		if len(me.Errors) != 1 {
			t.Fatalf("%d errors, want one:\n%v", len(me.Errors), err)
		}
		return me.Errors[0].Error()
	}
	return err.Error()
}

// refusedByPostProcess configures phoenix-deploy with src, which must be
// accepted, and returns the error of its PostProcess of artifact.
func refusedByPostProcess(t *testing.T, src, artifact string) string {
	t.Helper()
	var p deploy.PostProcessor
	f, diags := hclsyntax.ParseConfig([]byte(src), "build.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("the row's HCL: %v", diags)
	}
	val, diags := hcldec.Decode(f.Body, p.ConfigSpec(), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := p.Configure(val); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	art := &packersdk.MockArtifact{BuilderIdValue: "mitchellh.amazonebs", IdValue: artifact}
	ui := &packersdk.BasicUi{Reader: strings.NewReader(""), Writer: &strings.Builder{}, ErrorWriter: &strings.Builder{}}
	out, keep, _, err := p.PostProcess(context.Background(), ui, art)
	if err == nil {
		t.Fatal("PostProcess succeeded")
	}
	if out != art || !keep {
		t.Errorf("the artifact is not kept: %v %v", out, keep)
	}
	return err.Error()
}

// ssmStack makes image parameter param (aws:ec2:image) with ami and a
// group of one whose launch template's image is alias; it returns the
// template's id. The test's cleanup deletes the parameter.
func ssmStack(t *testing.T, f *deploytest.Fixture, group, param, ami, alias string) string {
	t.Helper()
	f.ImageParameter(param, ami)
	return f.Stack(group, alias, deploytest.StackOptions{Desired: 1, TargetGroups: -1}).Template
}
