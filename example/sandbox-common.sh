# shellcheck shell=bash
# Sourced by the sandbox-*.sh scenarios: the AWS CLI pointed at
# AWS_ENDPOINT_URL, and small helpers. Set TIMEOUT_VAR to the name of the
# scenario's timeout variable (seconds for each wait) before sourcing.
: "${AWS_ENDPOINT_URL:?set AWS_ENDPOINT_URL to the sandbox URL}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-sandbox}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-sandbox}"
export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}" AWS_PAGER="" AWS_MAX_ATTEMPTS=10
AWS="${AWS_CLI:-/usr/bin/aws}"
[ -x "$AWS" ] || AWS=$(command -v aws)
TIMEOUT="${!TIMEOUT_VAR:-120}"

aws() { "$AWS" --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }
say() { printf '==> %s\n' "$*"; }

# wait_for DESCRIPTION COMMAND...: polls until COMMAND succeeds.
wait_for() {
  local what=$1 deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after ${TIMEOUT}s waiting for $what (raise $TIMEOUT_VAR)" >&2
      return 1
    fi
    sleep 0.5
  done
}

# delete_phoenix_locks GROUP...: phoenix keeps one released lock parameter
# per group it deployed to (/phoenix/lock/GROUP/N) and the group's deploy
# history (/phoenix/history/GROUP); a stack's teardown removes them with
# the groups.
delete_phoenix_locks() {
  local g names
  for g in "$@"; do
    names=$(aws ssm get-parameters-by-path --path "/phoenix/lock/$g" --query 'Parameters[].Name')
    [ -n "$names" ] && [ "$names" != None ] && aws ssm delete-parameters --names $names >/dev/null
    aws ssm delete-parameters --names "/phoenix/history/$g" >/dev/null
  done
  return 0
}
