# phoenix.hcl: where `phoenix deploy ENV --ami ami-…` and the phoenix-deploy
# post-processor roll new AMIs, and between which `phoenix promote --from
# staging --to prod` carries them. See docs/deployer.md for every setting.

environment "staging" {
  region = "eu-west-1"
  # Credentials come from the environment: CI's role (see ci/), or
  # AWS_PROFILE on a laptop.

  # Refuse AMIs with unencrypted snapshots (phoenix-ebs encrypts by default).
  require_encrypted = true

  target "web" {
    asg = "web-staging"
    # target_groups defaults to the group's own; set it to gate on others.
  }

  strategy "rolling" {
    min_healthy_percentage = 50 # staging may run at half capacity
    max_healthy_percentage = 150
    instance_warmup        = "60s"
    health_timeout         = "10m"
  }
}

environment "prod" {
  region = "us-east-1"

  assume_role {
    role_arn     = "arn:aws:iam::123456789012:role/phoenix-deploy"
    session_name = "phoenix-prod"
  }

  require_encrypted = true

  # phoenix promote --from staging --to prod copies staging's AMI into this
  # region and account encrypted with this key (default: the region's EBS key).
  kms_key_id = "alias/phoenix-prod"

  # Auto Scaling launches with its service-linked role, which may use a
  # customer managed key only when the key policy names it or a grant gives
  # it the key; phoenix refuses a deploy whose key it cannot use, with the
  # fix. Leave the key policy to its owners, or let phoenix create the grant:
  # grant_kms = true

  target "web" {
    asg = "web-prod"
    # Blue-green instead: a second group and the listener that forwards to
    # both colours, with strategy "blue-green" below.
    # peer_asg = "web-prod-green"
    # listener = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web-prod/50dc6c495c0c9188/f2f7dc8efc522ab2"
  }

  # strategy "blue-green" {
  #   steps        = [10, 50, 100]
  #   bake_time    = "5m"
  #   keep_old_for = "1h"
  # }

  strategy "rolling" {
    min_healthy_percentage = 100 # launch before terminate: never below capacity
    max_healthy_percentage = 125
    instance_warmup        = "2m"
    checkpoints            = [10, 50, 100]
    checkpoint_delay       = "5m"
    skip_matching          = true
    auto_rollback          = true
    alarms                 = ["web-prod-5xx", "web-prod-latency"]
    bake_time              = "10m"
    health_timeout         = "15m"
  }
}
