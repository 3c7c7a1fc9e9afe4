#!/usr/bin/env bash
# An AMI named by a Systems Manager parameter, done by hand with the AWS
# CLI v2 against any AWS-compatible endpoint (the phoenix sandbox in the
# tests): an aws:ec2:image parameter -> a launch template whose ImageId is
# resolve:ssm:NAME -> an instance on the parameter's AMI -> the parameter
# moves to another AMI, the template stays -> the next instance runs the
# new AMI. It removes everything it created, also when it fails.
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 example/sandbox-ssm.sh
set -euo pipefail

NAME="${SSM_NAME:-ssm-demo}"
PARAM="/$NAME/golden-ami"
TIMEOUT_VAR=SSM_TIMEOUT
# shellcheck source=example/sandbox-common.sh
. "$(dirname "$0")/sandbox-common.sh"

LT_ID="" PARAM_CREATED="" INSTANCES=()
cleanup() {
  set +e
  say "Cleaning up"
  if [ ${#INSTANCES[@]} -gt 0 ]; then
    aws ec2 terminate-instances --instance-ids "${INSTANCES[@]}" >/dev/null
    terminated() { [ -z "$(aws ec2 describe-instances --instance-ids "${INSTANCES[@]}" \
      --query "Reservations[].Instances[?State.Name!='terminated'].InstanceId")" ]; }
    wait_for "the instances to terminate" terminated
  fi
  [ -n "$LT_ID" ] && aws ec2 delete-launch-template --launch-template-id "$LT_ID" >/dev/null
  [ -n "$PARAM_CREATED" ] && aws ssm delete-parameter --name "$PARAM"
  return 0
}
trap cleanup EXIT

say "Finding the two newest Debian 12 images (owner 136693071363)"
read -r OLD_AMI NEW_AMI < <(aws ec2 describe-images --owners 136693071363 \
  --filters 'Name=name,Values=debian-12-amd64-*' 'Name=state,Values=available' \
  --query 'sort_by(Images,&CreationDate)[-2:].ImageId' | tr '\t' ' ')
echo "    old $OLD_AMI, new $NEW_AMI"

# Parameter Store validates an aws:ec2:image value after answering: the
# version exists once get-parameter shows it.
version_is() { [ "$(aws ssm get-parameter --name "$PARAM" --query Parameter.Version 2>/dev/null)" = "$1" ]; }

say "Putting $PARAM = $OLD_AMI (data type aws:ec2:image)"
aws ssm put-parameter --name "$PARAM" --type String --data-type aws:ec2:image --value "$OLD_AMI" >/dev/null
PARAM_CREATED=1
wait_for "version 1 of $PARAM to be validated" version_is 1

say "Creating launch template $NAME with ImageId resolve:ssm:$PARAM"
LT_ID=$(aws ec2 create-launch-template --launch-template-name "$NAME" \
  --launch-template-data "{\"ImageId\":\"resolve:ssm:$PARAM\",\"InstanceType\":\"t3.micro\"}" \
  --query 'LaunchTemplate.LaunchTemplateId')
written=$(aws ec2 describe-launch-template-versions --launch-template-id "$LT_ID" --versions '$Default' \
  --query 'LaunchTemplateVersions[0].LaunchTemplateData.ImageId')
resolved=$(aws ec2 describe-launch-template-versions --launch-template-id "$LT_ID" --versions '$Default' --resolve-alias \
  --query 'LaunchTemplateVersions[0].LaunchTemplateData.ImageId')
echo "    the template says $written; resolved, $resolved"
[ "$resolved" = "$OLD_AMI" ] || { echo "resolve-alias gave $resolved, want $OLD_AMI" >&2; exit 1; }

launch() {
  local id ami
  read -r id ami < <(aws ec2 run-instances --launch-template "LaunchTemplateId=$LT_ID" --count 1 \
    --query 'Instances[0].[InstanceId,ImageId]' | tr '\t' ' ')
  INSTANCES+=("$id")
  echo "    $id runs $ami"
  [ "$ami" = "$1" ] || { echo "$id runs $ami, want $1" >&2; exit 1; }
}
say "Launching from the template"
launch "$OLD_AMI"

say "Moving $PARAM to $NEW_AMI; the template does not change"
aws ssm put-parameter --name "$PARAM" --type String --data-type aws:ec2:image --value "$NEW_AMI" --overwrite >/dev/null
wait_for "version 2 of $PARAM to be validated" version_is 2
launch "$NEW_AMI"
echo "    both launches resolved $PARAM at launch time"
say "Parameter rollout complete"
