# For image repos that keep HashiCorp's amazon-ebs builder: bake as before
# and chain phoenix-deploy, which accepts any artifact whose id is
# region:ami-….
#
#   packer init example/amazon-ebs.pkr.hcl && packer build example/amazon-ebs.pkr.hcl

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = "~> 1.8"
    }
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
  description = "AWS endpoint; the phoenix sandbox's URL in tests, empty for AWS."
}

variable "communicator" {
  type        = string
  default     = "ssh"
  description = "\"none\" on the sandbox's sim runtime, which has no sshd."
}

variable "kms_key_id" {
  type    = string
  default = "alias/images"
}

variable "deploy_asg" {
  type    = string
  default = "web"
}

locals {
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
}

source "amazon-ebs" "web" {
  region                 = var.region
  custom_endpoint_ec2    = var.endpoint
  skip_region_validation = var.endpoint != ""

  source_ami_filter {
    owners      = ["136693071363"] # Debian
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type = "t3.small"
  communicator  = var.communicator
  ssh_username  = "admin"

  ami_name     = "web-amazon-ebs-${local.stamp}"
  encrypt_boot = true
  kms_key_id   = var.kms_key_id
  tags = {
    app = "web"
  }
}

build {
  sources = ["source.amazon-ebs.web"]

  post-processor "phoenix-deploy" {
    name     = "deploy"
    region   = var.region
    endpoint = var.endpoint
    asg      = var.deploy_asg

    require_encrypted      = true
    min_healthy_percentage = 100
    max_healthy_percentage = 200
    # Auto Scaling launches with its service-linked role, which may use the
    # customer managed key only through the key policy or a grant: this
    # creates the grant when the key policy does not name the role.
    grant_kms = true
  }
}
