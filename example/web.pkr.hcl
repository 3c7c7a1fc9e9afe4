# Bakes the demo web app into a hardened, encrypted Debian 12 AMI.
#
#   packer init example/ && packer build example/
#
# Two sources: "web" connects over SSH, hardens the image and installs the
# app (the sandbox's linux runtime or AWS); "sim" bakes the same AMI
# without connecting (the sandbox's sim runtime, which has no sshd).
# The post-processor named "deploy" rolls the AMI onto the group behind its
# load balancer; `packer build -except=deploy` bakes without deploying.

packer {
  required_plugins {
    phoenix = {
      source  = "github.com/immutable-infra/phoenix"
      version = ">= 0.1.0"
    }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "endpoint" {
  type        = string
  default     = env("AWS_ENDPOINT_URL")
  description = "AWS endpoint; the phoenix sandbox's URL in the demo, empty for AWS."
}

variable "kms_key_id" {
  type        = string
  default     = "alias/images"
  description = "Customer managed key for the AMI's snapshots in the build region."
}

variable "copy_regions" {
  type    = map(string)
  default = {}
  description = "Regions to copy the AMI to, each with its KMS key."
}

variable "app_version" {
  type    = string
  default = "1.0.0"
}

variable "deploy_asg" {
  type        = string
  default     = "web"
  description = "The Auto Scaling group phoenix-deploy rolls the new AMI onto."
}

variable "ami_parameter" {
  type        = string
  default     = ""
  description = "SSM parameter the bake writes the new AMI id to (a candidate for `phoenix deploy --ami resolve:ssm:NAME`); empty: none. Not the parameter launch templates name: phoenix moves that one once the AMI has passed the gate."
}

variable "ami_parameter_region" {
  type        = string
  default     = ""
  description = "Region of ami_parameter: the build region or one of copy_regions; empty: the build region."
}

variable "app_binary" {
  type        = string
  default     = "bin/web-app"
  description = "The app built for linux/amd64 (make demo builds it)."
}

locals {
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "phoenix-ebs" "web" {
  region   = var.region
  endpoint = var.endpoint

  source_ami_filter {
    owners      = ["136693071363"] # Debian
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type = "t3.small"
  ssh_username  = "admin"

  ami_name           = "web-${var.app_version}-${local.stamp}"
  ami_description    = "web ${var.app_version} on {{ .SourceAMIName }}"
  kms_key_id         = var.kms_key_id
  ami_regions        = keys(var.copy_regions)
  region_kms_key_ids = var.copy_regions
  deprecate_after    = "2160h"
  tags = {
    app     = "web"
    version = var.app_version
    base    = "{{ .SourceAMIName }}"
  }

  # The pipeline's hand-over: the new AMI's id, written once every copy is
  # available (example/ci/pipeline.sh sets ami_parameter).
  dynamic "ssm_parameter" {
    for_each = var.ami_parameter == "" ? [] : [var.ami_parameter]
    content {
      name   = ssm_parameter.value
      region = var.ami_parameter_region == "" ? null : var.ami_parameter_region
    }
  }
}

build {
  name = "web"

  sources = ["source.phoenix-ebs.web"]

  source "source.phoenix-ebs.web" {
    name         = "sim"
    communicator = "none"
  }

  provisioner "phoenix-harden" {
    only      = ["phoenix-ebs.web"]
    profile   = "baseline"
    min_score = 90
    # Lynis audits the hardened instance; the AMI is tagged
    # phoenix:audit-lynis-index and the cleanup phase removes Lynis.
    audit = "lynis"
  }

  provisioner "file" {
    only        = ["phoenix-ebs.web"]
    source      = var.app_binary
    destination = "/tmp/web-app"
  }

  provisioner "file" {
    only        = ["phoenix-ebs.web"]
    source      = "${path.root}/app/web-app.service"
    destination = "/tmp/web-app.service"
  }

  provisioner "shell" {
    only = ["phoenix-ebs.web"]
    inline = [
      "sudo install -m 0755 /tmp/web-app /usr/local/bin/web-app",
      "sudo install -m 0644 /tmp/web-app.service /etc/systemd/system/web-app.service",
      "rm -f /tmp/web-app /tmp/web-app.service",
      "sudo systemctl enable web-app",
    ]
  }

  provisioner "phoenix-harden" {
    only  = ["phoenix-ebs.web"]
    phase = "cleanup"
  }

  post-processor "phoenix-deploy" {
    name     = "deploy"
    region   = var.region
    endpoint = var.endpoint
    asg      = var.deploy_asg

    require_encrypted      = true
    min_healthy_percentage = 100 # launch before terminate
    max_healthy_percentage = 200
    instance_warmup        = "30s"
    health_timeout         = "5m"
  }
}
