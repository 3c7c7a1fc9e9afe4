#!/usr/bin/env bash
# Blue-green infrastructure made with the AWS CLI v2, against any
# AWS-compatible endpoint (the phoenix sandbox in the demo and the tests):
# one launch template, two Auto Scaling groups (blue live with 3
# instances, green empty), a target group each, and one load balancer
# whose listener forwards to both with weights 1 and 0. BG_DEPLOY_CMD then
# deploys (phoenix deploy, phoenix promote, a packer build); the script
# checks that all traffic ended on a healthy colour and removes everything
# it created, also when something fails.
#
#   AWS_ENDPOINT_URL=http://127.0.0.1:4566 BG_AMI=ami-… \
#     BG_DEPLOY_CMD='phoenix deploy --asg "$BG_BLUE" --peer-asg "$BG_GREEN" --listener "$BG_LISTENER" --ami ami-…' \
#     example/sandbox-bluegreen.sh
set -euo pipefail

: "${BG_AMI:?set BG_AMI to the AMI blue starts on}"
NAME="${BG_NAME:-bg-demo}"
SIZE="${BG_SIZE:-3}"
TIMEOUT_VAR=BG_TIMEOUT
# shellcheck source=example/sandbox-common.sh
. "$(dirname "$0")/sandbox-common.sh"

LT_ID="" BLUE_TG="" GREEN_TG="" LB_ARN="" LISTENER_ARN="" GROUPS_MADE=""
cleanup() {
  set +e
  say "Cleaning up the blue-green stack"
  for g in $GROUPS_MADE; do
    aws autoscaling delete-auto-scaling-group --auto-scaling-group-name "$g" --force-delete >/dev/null
  done
  gone() { [ -z "$(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names $GROUPS_MADE --query 'AutoScalingGroups[].AutoScalingGroupName')" ]; }
  [ -n "$GROUPS_MADE" ] && wait_for "the groups to be deleted" gone
  delete_phoenix_locks $GROUPS_MADE
  [ -n "$LISTENER_ARN" ] && aws elbv2 delete-listener --listener-arn "$LISTENER_ARN" >/dev/null
  [ -n "$LB_ARN" ] && aws elbv2 delete-load-balancer --load-balancer-arn "$LB_ARN" >/dev/null
  for tg in $BLUE_TG $GREEN_TG; do aws elbv2 delete-target-group --target-group-arn "$tg" >/dev/null; done
  [ -n "$LT_ID" ] && aws ec2 delete-launch-template --launch-template-id "$LT_ID" >/dev/null
  return 0
}
trap cleanup EXIT

VPC=$(aws ec2 describe-vpcs --filters Name=is-default,Values=true --query 'Vpcs[0].VpcId')
SUBNETS=$(aws ec2 describe-subnets --filters "Name=vpc-id,Values=$VPC" Name=default-for-az,Values=true \
  --query 'sort_by(Subnets,&AvailabilityZone)[:3].SubnetId' | tr '\t' ' ')

say "Creating launch template $NAME (version 1: $BG_AMI), shared by both colours"
USER_DATA=""
[ -n "${BG_USER_DATA:-}" ] && USER_DATA=",\"UserData\":\"$(base64 -w0 "$BG_USER_DATA")\""
LT_ID=$(aws ec2 create-launch-template --launch-template-name "$NAME" \
  --launch-template-data "{\"ImageId\":\"$BG_AMI\",\"InstanceType\":\"t3.micro\",\"MetadataOptions\":{\"HttpTokens\":\"required\"}$USER_DATA}" \
  --query 'LaunchTemplate.LaunchTemplateId')

say "Creating a target group per colour, a load balancer and a listener forwarding blue 1, green 0"
tg() {
  local arn
  arn=$(aws elbv2 create-target-group --name "$1" --protocol HTTP --port 8080 --vpc-id "$VPC" \
    --health-check-path /health --health-check-interval-seconds 10 --healthy-threshold-count 2 \
    --query 'TargetGroups[0].TargetGroupArn')
  aws elbv2 modify-target-group-attributes --target-group-arn "$arn" \
    --attributes Key=deregistration_delay.timeout_seconds,Value=30 >/dev/null
  echo "$arn"
}
BLUE_TG=$(tg "$NAME-blue")
GREEN_TG=$(tg "$NAME-green")
# shellcheck disable=SC2086
LB_ARN=$(aws elbv2 create-load-balancer --name "$NAME" --subnets $SUBNETS --query 'LoadBalancers[0].LoadBalancerArn')
LISTENER_ARN=$(aws elbv2 create-listener --load-balancer-arn "$LB_ARN" --protocol HTTP --port 80 \
  --default-actions "[{\"Type\":\"forward\",\"ForwardConfig\":{\"TargetGroups\":[{\"TargetGroupArn\":\"$BLUE_TG\",\"Weight\":1},{\"TargetGroupArn\":\"$GREEN_TG\",\"Weight\":0}]}}]" \
  --query 'Listeners[0].ListenerArn')

say "Creating groups $NAME-blue ($SIZE instances) and $NAME-green (empty)"
for colour in blue green; do
  size=$SIZE arn=$BLUE_TG
  [ $colour = green ] && size=0 arn=$GREEN_TG
  aws autoscaling create-auto-scaling-group --auto-scaling-group-name "$NAME-$colour" \
    --launch-template "LaunchTemplateId=$LT_ID,Version=1" --min-size "$size" --max-size $((2 * SIZE)) --desired-capacity "$size" \
    --vpc-zone-identifier "$(echo "$SUBNETS" | tr ' ' ',')" --target-group-arns "$arn" \
    --health-check-type ELB --health-check-grace-period 60
  GROUPS_MADE="$GROUPS_MADE $NAME-$colour"
done

healthy() {
  [ "$(aws elbv2 describe-target-health --target-group-arn "$1" --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy'])")" = "$SIZE" ]
}
wait_for "$SIZE healthy blue targets" healthy "$BLUE_TG"
echo "    blue: $SIZE/$SIZE targets healthy on $BG_AMI; listener $LISTENER_ARN"

say "Deploying with: ${BG_DEPLOY_CMD:?set BG_DEPLOY_CMD}"
BG_BLUE="$NAME-blue" BG_GREEN="$NAME-green" BG_LISTENER="$LISTENER_ARN" sh -c "$BG_DEPLOY_CMD"

weights=$(aws elbv2 describe-listeners --listener-arns "$LISTENER_ARN" \
  --query "Listeners[0].DefaultActions[0].ForwardConfig.TargetGroups[?TargetGroupArn=='$GREEN_TG'].Weight | [0]")
LIVE=blue LIVE_TG=$BLUE_TG
[ "$weights" -gt 0 ] && LIVE=green LIVE_TG=$GREEN_TG
wait_for "$SIZE healthy $LIVE targets" healthy "$LIVE_TG"
AMI=$(aws ec2 describe-instances --filters "Name=tag:aws:autoscaling:groupName,Values=$NAME-$LIVE" Name=instance-state-name,Values=running \
  --query 'Reservations[].Instances[].ImageId' | tr '\t' '\n' | sort -u | tr '\n' ' ')
say "All traffic on $LIVE: $SIZE/$SIZE targets healthy on $AMI"
if [ -n "${BG_SHOW:-}" ]; then
  DNS=$(aws elbv2 describe-load-balancers --load-balancer-arns "$LB_ARN" --query 'LoadBalancers[0].DNSName')
  say "Asking the load balancer (http://$DNS/) three times"
  for _ in 1 2 3; do printf '    %s\n' "$(curl -fsS --max-time 5 "http://$DNS/")"; done
fi
