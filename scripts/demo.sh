#!/usr/bin/env bash
# The demo, on the local sandbox cloud: bake an encrypted, tagged AMI with
# the real Packer and the phoenix plugin, roll it onto staging (an Auto
# Scaling group of 3 behind a load balancer), promote it to prod (another
# region, blue-green), show the result and that nothing is left, and stop
# the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-$PWD/bin}
SCALE=${DEMO_TIME_SCALE:-0.02}
# The linux runtime (real instances, SSH, real load balancers) needs root
# on Linux; elsewhere the demo runs on the sim runtime and says what it skips.
RUNTIME=${DEMO_RUNTIME:-}
if [ -z "$RUNTIME" ]; then
  if [ "$(uname -s)" = Linux ] && [ "$(id -u)" = 0 ]; then RUNTIME=linux; else RUNTIME=sim; fi
fi
STATE=$(mktemp -d -t phoenix-demo-XXXXXX)
LOG="$STATE/sandbox.log"
SANDBOX_PID=""
export CHECKPOINT_DISABLE=1 PACKER_PLUGIN_PATH="$STATE/plugins" PACKER_NO_COLOR=1
export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_REGION=us-east-1 AWS_PAGER=""
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
AWS_CLI=/usr/bin/aws
[ -x "$AWS_CLI" ] || AWS_CLI=$(command -v aws)

stop_sandbox() {
  if [ -n "$SANDBOX_PID" ] && kill -0 "$SANDBOX_PID" 2>/dev/null; then
    kill -INT "$SANDBOX_PID"
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  rm -rf "$STATE"
}
trap stop_sandbox EXIT

echo "==> Building Packer (pinned in tools/go.mod), the phoenix plugin and the demo app"
./scripts/install-packer.sh
go build -o "$BIN/packer-plugin-phoenix" .
CGO_ENABLED=0 go build -ldflags "-X main.version=2.0.0" -o "$BIN/web-app" ./example/app
"$BIN/packer" plugins install --path "$BIN/packer-plugin-phoenix" github.com/immutable-infra/phoenix >/dev/null
"$BIN/packer" plugins installed | sed 's/^/    installed: /'

if [ "$RUNTIME" = sim ]; then
  echo "==> Not root on Linux: using the sim runtime. Skipped: SSH, phoenix-harden and the app in the image, real traffic through the load balancer"
fi
echo "==> Starting the sandbox (runtime $RUNTIME, time scale $SCALE: AWS durations $(awk "BEGIN{print 1/$SCALE}")x faster)"
[ "$RUNTIME" = linux ] && echo "    (the first start builds a Debian 12 root filesystem with debootstrap, about a minute, then caches it)"
"$BIN/phoenix" sandbox --listen 127.0.0.1:0 --runtime "$RUNTIME" --time-scale "$SCALE" --state-dir "$STATE/sandbox" >"$LOG" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 1800); do
  URL=$(sed -n 's/.*serving \(http:[^ ]*\).*/\1/p' "$LOG" | head -1)
  [ -n "$URL" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$LOG"; exit 1; }
  sleep 0.1
done
[ -n "${URL:-}" ] || { echo "the sandbox did not start:"; cat "$LOG"; exit 1; }
export AWS_ENDPOINT_URL="$URL"
echo "    serving $URL (hooks: $URL/_sandbox/inventory)"
aws() { "$AWS_CLI" --endpoint-url "$URL" --output text "$@"; }

# On AWS, Auto Scaling launches with its service-linked role, which may
# use a customer managed key only when the key policy names it (or a grant
# gives it the key): the default key policy would make every launch of
# these images fail. The keys get AWS's documented statements for it.
echo "==> Creating customer managed KMS keys for the images (us-east-1, eu-west-1), whose key policies let Auto Scaling's service-linked role use them"
ACCOUNT=$(aws sts get-caller-identity --query Account)
ROLE="arn:aws:iam::$ACCOUNT:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
cat >"$STATE/key-policy.json" <<POLICY
{"Version": "2012-10-17", "Statement": [
  {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$ACCOUNT:root"}, "Action": "kms:*", "Resource": "*"},
  {"Sid": "Allow service-linked role use of the customer managed key", "Effect": "Allow", "Principal": {"AWS": "$ROLE"},
   "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"], "Resource": "*"},
  {"Sid": "Allow attachment of persistent resources", "Effect": "Allow", "Principal": {"AWS": "$ROLE"},
   "Action": "kms:CreateGrant", "Resource": "*", "Condition": {"Bool": {"kms:GrantIsForAWSResource": true}}}]}
POLICY
for r in us-east-1:alias/images eu-west-1:alias/images-eu; do
  region=${r%%:*} alias=${r#*:}
  key=$(aws kms create-key --region "$region" --description "demo images" --policy "file://$STATE/key-policy.json" --query KeyMetadata.KeyId)
  aws kms create-alias --region "$region" --alias-name "$alias" --target-key-id "$key"
done

# bake VERSION SOURCE [copy regions]: packer build; prints the AMI id of us-east-1.
bake() {
  local version=$1 source=$2 copies=${3:-'{}'}
  shift 3
  CGO_ENABLED=0 go build -ldflags "-X main.version=$version" -o "$BIN/web-app" ./example/app
  "$BIN/packer" build -only="web.phoenix-ebs.$source" -var app_version="$version" -var "app_binary=$BIN/web-app" \
    -var "copy_regions=$copies" "$@" example/web.pkr.hcl >"$STATE/build-$version.log" 2>&1 ||
    { cat "$STATE/build-$version.log"; return 1; }
  sed 's/^/    /' "$STATE/build-$version.log" >&2
  sed -n 's/.*us-east-1: \(ami-[0-9a-f]*\).*/\1/p' "$STATE/build-$version.log" | tail -1
}

SOURCE=sim
[ "$RUNTIME" = linux ] && SOURCE=web
OLD=""
# prod (eu-west-1) starts on web 1.0.0 as well: its copy from the first bake.
OLD_EU=$(aws ec2 describe-images --region eu-west-1 --owners 136693071363 --filters 'Name=name,Values=debian-12-amd64-*' \
  --query 'sort_by(Images,&CreationDate)[-1].ImageId')
if [ "$RUNTIME" = linux ]; then
  echo "==> packer build -except=deploy: web 1.0.0 (SSH to a real Debian 12 instance, phoenix-harden, the app, cleanup), copied to eu-west-1"
  OLD=$(bake 1.0.0 web '{"eu-west-1":"alias/images-eu"}' -except=deploy 2> >(grep -E 'score [0-9]+/100|Hardening report|Copy |AMIs were created|: ami-' >&2))
  [ -n "$OLD" ] || { echo "no AMI in the build output"; exit 1; }
  OLD_EU=$(sed -n 's/.*eu-west-1: \(ami-[0-9a-f]*\).*/\1/p' "$STATE/build-1.0.0.log" | tail -1)
  [ -n "$OLD_EU" ] || { echo "no eu-west-1 AMI in the build output"; exit 1; }
fi
CGO_ENABLED=0 go build -ldflags "-X main.version=2.0.0" -o "$BIN/web-app-2" ./example/app
cat >"$STATE/deploy.sh" <<DEPLOY
set -eo pipefail
"$BIN/packer" build -only=web.phoenix-ebs.$SOURCE -var app_version=2.0.0 -var app_binary=$BIN/web-app-2 \\
  -var deploy_asg=\$ROLLOUT_ASG example/web.pkr.hcl >"$STATE/build-2.0.0.log" 2>&1 ||
  { cat "$STATE/build-2.0.0.log"; exit 1; }
grep -E 'score [0-9]+/100|Hardening report|phoenix-deploy|refresh|healthy|succeeded|rolled|AMIs were created|: ami-' "$STATE/build-2.0.0.log" | sed 's/^/    /'
echo "==> Staging (\$ROLLOUT_ASG, us-east-1) runs web 2.0.0; prod is blue-green in eu-west-1 and runs web 1.0.0"
ROLLOUT_ASG=\$ROLLOUT_ASG AWS_REGION=eu-west-1 BG_NAME=web-prod BG_AMI=$OLD_EU BG_USER_DATA=example/web-userdata.sh \\
  BG_SHOW=$([ "$RUNTIME" = linux ] && echo 1) BG_DEPLOY_CMD="bash $STATE/promote.sh" AWS_CLI="$AWS_CLI" ./example/sandbox-bluegreen.sh
DEPLOY
MIN_SCORE=""
[ "$RUNTIME" = linux ] && MIN_SCORE="    min_hardening_score = 90
"
cat >"$STATE/promote.sh" <<PROMOTE
set -eo pipefail
cat >"$STATE/phoenix.hcl" <<HCL
environment "staging" {
  region        = "us-east-1"
  endpoint      = "$URL"
  poll_interval = "1s"
  target "web" {
    asg = "\$ROLLOUT_ASG"
  }
}

environment "prod" {
  region        = "eu-west-1"
  endpoint      = "$URL"
  kms_key_id    = "alias/images-eu"
  poll_interval = "1s"
  target "web" {
    asg      = "\$BG_BLUE"
    peer_asg = "\$BG_GREEN"
    listener = "\$BG_LISTENER"
  }
  strategy "blue-green" {
    steps        = [25, 100]
    bake_time    = "3s"
    keep_old_for = "1h"
  }
  # Only an image live and healthy in staging (and, when baked with
  # phoenix-harden, scoring at least 90) may reach prod.
  policy {
$MIN_SCORE    promoted_from = "staging"
  }
}
HCL
echo "==> phoenix promote --from staging --to prod: staging's live AMI, copied to eu-west-1 under prod's key, then blue-green"
"$BIN/phoenix" promote --from staging --to prod --config "$STATE/phoenix.hcl" | sed 's/^/    /'
echo "==> phoenix promote again: nothing to do"
"$BIN/phoenix" promote --from staging --to prod --config "$STATE/phoenix.hcl" | sed 's/^/    /'
echo "==> phoenix status prod"
"$BIN/phoenix" status prod --config "$STATE/phoenix.hcl" | sed 's/^/    /'
echo "==> phoenix history prod: every deploy, recorded in AWS"
"$BIN/phoenix" history prod --config "$STATE/phoenix.hcl" | sed 's/^/    /'
PROMOTE

echo "==> Staging runs web 1.0.0 from a launch template that names its image by SSM parameter /demo/web/ami; packer build bakes web 2.0.0 and its phoenix-deploy post-processor rolls it out and moves the parameter"
ROLLOUT_OLD_AMI="$OLD" ROLLOUT_IMAGE_PARAMETER=/demo/web/ami ROLLOUT_USER_DATA=example/web-userdata.sh ROLLOUT_DEPLOY_CMD="bash $STATE/deploy.sh" \
  ROLLOUT_SHOW=$([ "$RUNTIME" = linux ] && echo 1) AWS_CLI="$AWS_CLI" ./example/sandbox-rollout.sh | sed 's/^/    /'
AMI=$(sed -n 's/.*us-east-1: \(ami-[0-9a-f]*\).*/\1/p' "$STATE/build-2.0.0.log" | tail -1)
[ -n "$AMI" ] || { echo "no AMI in the build output"; exit 1; }
echo "==> The AMI that was rolled out, as AWS describes it:"
aws ec2 describe-images --image-ids "$AMI" --query 'Images[0].[ImageId,Name,ImdsSupport]' | sed 's/^/    /'
aws ec2 describe-images --image-ids "$AMI" --query 'Images[0].Tags[?starts_with(Key, `phoenix:`) || Key==`version`].[Key,Value]' | sort | sed 's/^/    /'
SNAP=$(aws ec2 describe-images --image-ids "$AMI" --query 'Images[0].BlockDeviceMappings[0].Ebs.SnapshotId')
aws ec2 describe-snapshots --snapshot-ids "$SNAP" --query 'Snapshots[0].[SnapshotId,Encrypted,KmsKeyId]' | sed 's/^/    snapshot: /'

echo "==> Removing the baked AMIs, their snapshots and the keys"
# EC2 may say a snapshot is still in use for a while after its AMI is
# deregistered (InvalidSnapshot.InUse): try again for up to a minute.
delete_snapshot() {
  for _ in $(seq 60); do
    aws ec2 delete-snapshot --region "$1" --snapshot-id "$2" 2>/dev/null && return
    sleep 1
  done
  aws ec2 delete-snapshot --region "$1" --snapshot-id "$2"
}
for region in us-east-1 eu-west-1; do
  for id in $(aws ec2 describe-images --region "$region" --owners self --query 'Images[].ImageId'); do
    snaps=$(aws ec2 describe-images --region "$region" --image-ids "$id" --query 'Images[0].BlockDeviceMappings[].Ebs.SnapshotId')
    aws ec2 deregister-image --region "$region" --image-id "$id"
    for s in $snaps; do delete_snapshot "$region" "$s"; done
  done
  for alias in $(aws kms list-aliases --region "$region" --query 'Aliases[?starts_with(AliasName, `alias/images`)].AliasName'); do
    key=$(aws kms describe-key --region "$region" --key-id "$alias" --query KeyMetadata.KeyId)
    aws kms delete-alias --region "$region" --alias-name "$alias"
    aws kms schedule-key-deletion --region "$region" --key-id "$key" --pending-window-in-days 7 >/dev/null
  done
done

echo "==> AWS calls made, by service and action:"
curl -fsS "$URL/_sandbox/calls" | tr -d '\n ' | sed 's/},/},\n/g; s/^/    /'; echo
LEFT=$(curl -fsS "$URL/_sandbox/inventory" | grep -c '"id"' || true)
echo "==> Resources left in the sandbox: $LEFT"
[ "$LEFT" = 0 ] || { curl -fsS "$URL/_sandbox/inventory"; exit 1; }
echo "==> Demo finished; stopping the sandbox"
