#!/usr/bin/env bash
# The release pipeline in three stages, as CI runs them (see
# github-actions.yml): bake an AMI, deploy it to staging, promote the AMI
# that is live and healthy in staging to prod. Each stage is one job; the
# AMI id travels from bake to staging as a job output.
#
#   example/ci/pipeline.sh bake      # packer build -except=deploy; writes the AMI id
#   example/ci/pipeline.sh staging   # phoenix deploy staging --ami "$AMI"
#   example/ci/pipeline.sh prod      # phoenix promote --from staging --to prod
#
# Settings (environment): PACKER, PHOENIX (the binaries, default from PATH);
# PHOENIX_CONFIG (default example/phoenix.hcl); PACKER_TEMPLATE (default
# example/web.pkr.hcl); PACKER_ONLY (default web.phoenix-ebs.web);
# PACKER_VAR_FILE (optional -var-file); BAKE_REGION (default us-east-1:
# the region whose AMI goes to staging); AMI_PARAMETER (optional: an SSM
# parameter, e.g. /web/candidate, that bake publishes the AMI to in
# BAKE_REGION and staging deploys from, so the AMI needs no job output);
# AMI (staging's AMI; default: resolve:ssm:AMI_PARAMETER when that is set,
# else the file AMI_FILE, ami.txt, that bake writes).
set -euo pipefail

PACKER=${PACKER:-packer}
PHOENIX=${PHOENIX:-phoenix}
PHOENIX_CONFIG=${PHOENIX_CONFIG:-example/phoenix.hcl}
PACKER_TEMPLATE=${PACKER_TEMPLATE:-example/web.pkr.hcl}
PACKER_ONLY=${PACKER_ONLY:-web.phoenix-ebs.web}
BAKE_REGION=${BAKE_REGION:-us-east-1}
AMI_FILE=${AMI_FILE:-ami.txt}

stage=${1:?usage: pipeline.sh bake|staging|prod}
case "$stage" in
bake)
  args=(build -only="$PACKER_ONLY" -except=deploy -machine-readable)
  [ -n "${PACKER_VAR_FILE:-}" ] && args+=(-var-file="$PACKER_VAR_FILE")
  [ -n "${AMI_PARAMETER:-}" ] && args+=(-var "ami_parameter=$AMI_PARAMETER" -var "ami_parameter_region=$BAKE_REGION")
  log=$(mktemp)
  "$PACKER" "${args[@]}" "$PACKER_TEMPLATE" | tee "$log" | awk -F, '$3 == "ui" { sub(/^[^,]*,[^,]*,[^,]*,[^,]*,/, ""); gsub(/%!\(PACKER_COMMA\)/, ","); print }'
  # The artifact id is region:ami-…[,region:ami-…]; staging takes BAKE_REGION's.
  id=$(awk -F, '$3 == "artifact" && $5 == "id" { print $6 }' "$log" | sed 's/%!(PACKER_COMMA)/,/g' | tail -1)
  rm -f "$log"
  ami=$(printf '%s\n' "$id" | tr ',' '\n' | sed -n "s/^$BAKE_REGION:\(ami-[0-9a-f]*\)$/\1/p")
  [ -n "$ami" ] || { echo "pipeline: the build made no AMI in $BAKE_REGION (artifact: ${id:-none})" >&2; exit 1; }
  echo "$ami" >"$AMI_FILE"
  [ -n "${GITHUB_OUTPUT:-}" ] && echo "ami=$ami" >>"$GITHUB_OUTPUT"
  echo "pipeline: baked $ami in $BAKE_REGION${AMI_PARAMETER:+ (SSM parameter $AMI_PARAMETER names it)}"
  ;;
staging)
  if [ -n "${AMI:-}" ]; then
    ami=$AMI
  elif [ -n "${AMI_PARAMETER:-}" ]; then
    ami="resolve:ssm:$AMI_PARAMETER"
  else
    ami=$(cat "$AMI_FILE")
  fi
  "$PHOENIX" plan staging --config "$PHOENIX_CONFIG" --ami "$ami"
  "$PHOENIX" deploy staging --config "$PHOENIX_CONFIG" --ami "$ami"
  ;;
prod)
  "$PHOENIX" promote --from staging --to prod --config "$PHOENIX_CONFIG"
  ;;
*)
  echo "pipeline: unknown stage $stage (bake, staging or prod)" >&2
  exit 2
  ;;
esac
