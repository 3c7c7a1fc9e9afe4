#!/usr/bin/env bash
# A rolling AMI update done by hand with the AWS CLI v2, against any
# AWS-compatible endpoint (the phoenix sandbox in the demo and the tests):
# launch template -> ASG of 3 behind a load balancer -> new template
# version with another AMI -> instance refresh -> every target healthy on
# the new AMI. It removes everything it created, also when it fails.
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 example/sandbox-rollout.sh
#
# With ROLLOUT_IMAGE_PARAMETER=/web/ami (and ROLLOUT_DEPLOY_CMD), the
# template names its image by that SSM parameter (resolve:ssm:), as
# infrastructure code that leaves the image to phoenix writes it: the
# deploy moves the parameter, and the group stays on version 1.
set -euo pipefail

NAME="${ROLLOUT_NAME:-rollout-demo}"
TIMEOUT_VAR=ROLLOUT_TIMEOUT
# shellcheck source=example/sandbox-common.sh
. "$(dirname "$0")/sandbox-common.sh"

LT_ID="" TG_ARN="" LB_ARN="" LISTENER_ARN="" ASG_CREATED="" PARAM_CREATED=""
cleanup() {
  set +e
  say "Cleaning up"
  if [ -n "$ASG_CREATED" ]; then
    aws autoscaling delete-auto-scaling-group --auto-scaling-group-name "$NAME" --force-delete >/dev/null
    gone() { [ -z "$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$NAME" --query 'AutoScalingGroups[].AutoScalingGroupName')" ]; }
    wait_for "the group to be deleted" gone
    delete_phoenix_locks "$NAME"
  fi
  [ -n "$LISTENER_ARN" ] && aws elbv2 delete-listener --listener-arn "$LISTENER_ARN" >/dev/null
  [ -n "$LB_ARN" ] && aws elbv2 delete-load-balancer --load-balancer-arn "$LB_ARN" >/dev/null
  [ -n "$TG_ARN" ] && aws elbv2 delete-target-group --target-group-arn "$TG_ARN" >/dev/null
  [ -n "$LT_ID" ] && aws ec2 delete-launch-template --launch-template-id "$LT_ID" >/dev/null
  [ -n "$PARAM_CREATED" ] && aws ssm delete-parameter --name "$PARAM_CREATED" >/dev/null
  return 0
}
trap cleanup EXIT

say "Finding the two newest Debian 12 images (owner 136693071363)"
read -r OLD_AMI NEW_AMI < <(aws ec2 describe-images --owners 136693071363 \
  --filters 'Name=name,Values=debian-12-amd64-*' 'Name=state,Values=available' \
  --query 'sort_by(Images,&CreationDate)[-2:].ImageId' | tr '\t' ' ')
# ROLLOUT_OLD_AMI / ROLLOUT_NEW_AMI use images of one's own (the demo's
# baked AMIs) instead.
OLD_AMI="${ROLLOUT_OLD_AMI:-$OLD_AMI}"
NEW_AMI="${ROLLOUT_NEW_AMI:-$NEW_AMI}"
echo "    old $OLD_AMI, new $NEW_AMI${ROLLOUT_NEW_AMI:+ (given)}"

VPC=$(aws ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId')
SUBNETS=$(aws ec2 describe-subnets --filters "Name=vpc-id,Values=$VPC" Name=default-for-az,Values=true \
  --query 'sort_by(Subnets,&AvailabilityZone)[:3].SubnetId' | tr '\t' ' ')
echo "    default VPC $VPC, subnets $SUBNETS"

IMAGE="$OLD_AMI"
PARAM="${ROLLOUT_IMAGE_PARAMETER:-}"
if [ -n "$PARAM" ]; then
  [ -n "${ROLLOUT_DEPLOY_CMD:-}" ] || { echo "ROLLOUT_IMAGE_PARAMETER needs ROLLOUT_DEPLOY_CMD: Auto Scaling does not refresh to a template that names an SSM parameter" >&2; exit 3; }
  say "Creating SSM parameter $PARAM = $OLD_AMI (data type aws:ec2:image)"
  aws ssm put-parameter --name "$PARAM" --value "$OLD_AMI" --type String --data-type aws:ec2:image >/dev/null
  PARAM_CREATED="$PARAM"
  validated() { [ "$(aws ssm get-parameter --name "$PARAM" --query Parameter.Value 2>/dev/null)" = "$OLD_AMI" ]; }
  wait_for "SSM to validate $PARAM" validated
  IMAGE="resolve:ssm:$PARAM"
fi
say "Creating launch template $NAME (version 1: $IMAGE)"
USER_DATA=""
# ROLLOUT_USER_DATA names a file to run at boot (the demo starts its app).
[ -n "${ROLLOUT_USER_DATA:-}" ] && USER_DATA=",\"UserData\":\"$(base64 -w0 "$ROLLOUT_USER_DATA")\""
LT_ID=$(aws ec2 create-launch-template --launch-template-name "$NAME" \
  --launch-template-data "{\"ImageId\":\"$IMAGE\",\"InstanceType\":\"t3.micro\",\"MetadataOptions\":{\"HttpTokens\":\"required\"}$USER_DATA}" \
  --query 'LaunchTemplate.LaunchTemplateId')

say "Creating target group, load balancer and listener"
TG_ARN=$(aws elbv2 create-target-group --name "$NAME" --protocol HTTP --port 8080 --vpc-id "$VPC" \
  --health-check-path /health --health-check-interval-seconds 10 --healthy-threshold-count 2 \
  --query 'TargetGroups[0].TargetGroupArn')
aws elbv2 modify-target-group-attributes --target-group-arn "$TG_ARN" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=30 >/dev/null
# shellcheck disable=SC2086
LB_ARN=$(aws elbv2 create-load-balancer --name "$NAME" --subnets $SUBNETS --query 'LoadBalancers[0].LoadBalancerArn')
LISTENER_ARN=$(aws elbv2 create-listener --load-balancer-arn "$LB_ARN" --protocol HTTP --port 80 \
  --default-actions "Type=forward,TargetGroupArn=$TG_ARN" --query 'Listeners[0].ListenerArn')

say "Creating auto scaling group $NAME: 3 instances from version 1"
aws autoscaling create-auto-scaling-group --auto-scaling-group-name "$NAME" \
  --launch-template "LaunchTemplateId=$LT_ID,Version=1" --min-size 3 --max-size 6 --desired-capacity 3 \
  --vpc-zone-identifier "$(echo "$SUBNETS" | tr ' ' ',')" --target-group-arns "$TG_ARN" \
  --health-check-type ELB --health-check-grace-period 60
ASG_CREATED=1

healthy_count() {
  aws elbv2 describe-target-health --target-group-arn "$TG_ARN" \
    --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy'])"
}
all_healthy() { [ "$(healthy_count)" = 3 ] && [ "$(aws elbv2 describe-target-health --target-group-arn "$TG_ARN" --query 'length(TargetHealthDescriptions)')" = 3 ]; }
wait_for "3 healthy targets" all_healthy
echo "    3/3 targets healthy"

if [ -n "${ROLLOUT_DEPLOY_CMD:-}" ]; then
  # ROLLOUT_DEPLOY_CMD rolls the new AMI out instead of the AWS CLI below,
  # e.g. packer build with phoenix-deploy, or phoenix deploy; it finds the
  # group's name in ROLLOUT_ASG.
  say "Rolling out with: $ROLLOUT_DEPLOY_CMD"
  ROLLOUT_ASG="$NAME" sh -c "$ROLLOUT_DEPLOY_CMD"
  if [ -n "$PARAM" ]; then
    NEW_AMI=$(aws ssm get-parameter --name "$PARAM" --query Parameter.Value)
  else
    NEW_AMI=$(aws ec2 describe-launch-template-versions --launch-template-id "$LT_ID" --versions 2 \
      --query 'LaunchTemplateVersions[0].LaunchTemplateData.ImageId')
  fi
else
  say "Creating launch template version 2 with $NEW_AMI (only the AMI changes)"
  aws ec2 create-launch-template-version --launch-template-id "$LT_ID" --source-version 1 \
    --launch-template-data "{\"ImageId\":\"$NEW_AMI\"}" --query 'LaunchTemplateVersion.VersionNumber' >/dev/null

  say "Starting an instance refresh to version 2 (min healthy 66%: one instance at a time)"
  REFRESH=$(aws autoscaling start-instance-refresh --auto-scaling-group-name "$NAME" \
    --desired-configuration "{\"LaunchTemplate\":{\"LaunchTemplateId\":\"$LT_ID\",\"Version\":\"2\"}}" \
    --preferences '{"MinHealthyPercentage":66,"InstanceWarmup":30,"SkipMatching":true}' \
    --query InstanceRefreshId)
  echo "    instance refresh $REFRESH"

  refresh_status() {
    aws autoscaling describe-instance-refreshes --auto-scaling-group-name "$NAME" --instance-refresh-ids "$REFRESH" \
      --query 'InstanceRefreshes[0].[Status,PercentageComplete]'
  }
  refresh_done() {
    local s
    s=$(refresh_status)
    printf '    %s\n' "$s"
    case "$s" in
      Successful*) return 0 ;;
      Failed* | Cancelled* | RollbackSuccessful* | RollbackFailed*) echo "instance refresh ended: $s" >&2; exit 1 ;;
    esac
    sleep 1
    return 1
  }
  wait_for "the instance refresh" refresh_done

fi

wait_for "3 healthy targets after the refresh" all_healthy
GROUP_VERSION=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$NAME" \
  --query 'AutoScalingGroups[0].LaunchTemplate.Version')
if [ -n "$PARAM" ]; then
  # shellcheck disable=SC2046
  ON_NEW=$(aws ec2 describe-instances --instance-ids $(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$NAME" \
    --query "AutoScalingGroups[0].Instances[?LifecycleState=='InService'].InstanceId") \
    --query "length(Reservations[].Instances[?ImageId=='$NEW_AMI'][])")
  echo "    $ON_NEW/3 instances on $NEW_AMI, which $PARAM names; the group still launches version $GROUP_VERSION ($IMAGE)"
  [ "$ON_NEW" = 3 ] && [ "$GROUP_VERSION" = 1 ] && [ "$NEW_AMI" != "$OLD_AMI" ] || { echo "the group is not fully on the parameter's new image" >&2; exit 1; }
else
  ON_NEW=$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names "$NAME" \
    --query "length(AutoScalingGroups[0].Instances[?LaunchTemplate.Version=='2' && LifecycleState=='InService'])")
  echo "    $ON_NEW/3 instances on version 2; the group now launches version $GROUP_VERSION"
  [ "$ON_NEW" = 3 ] && [ "$GROUP_VERSION" = 2 ] || { echo "the group is not fully on version 2" >&2; exit 1; }
fi
say "Rollout complete: 3/3 targets healthy on $NEW_AMI"
if [ -n "${ROLLOUT_SHOW:-}" ]; then
  DNS=$(aws elbv2 describe-load-balancers --load-balancer-arns "$LB_ARN" --query 'LoadBalancers[0].DNSName')
  say "Asking the load balancer (http://$DNS/) three times"
  for _ in 1 2 3; do printf '    %s\n' "$(curl -fsS --max-time 5 "http://$DNS/")"; done
fi
