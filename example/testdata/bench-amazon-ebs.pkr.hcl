# The encrypted bake of bench_test.go with amazon-ebs (packer-plugin-amazon
# v1.8.2): the same bake as bench-phoenix-ebs.pkr.hcl, written as its users
# write it (encrypt_boot with a customer key, region_kms_key_ids for the
# copies), pointed at the sandbox.

variable "endpoint" {
  type = string
}

variable "ami_name" {
  type = string
}

variable "kms_key_id" {
  type = string
}

variable "copy_kms_key_ids" {
  type        = map(string)
  default     = {}
  description = "Regions to copy the AMI to, each with its KMS key."
}

variable "poll_seconds" {
  type = number
}

source "amazon-ebs" "bench" {
  region                 = "us-east-1"
  custom_endpoint_ec2    = var.endpoint
  skip_region_validation = true

  source_ami_filter {
    owners      = ["136693071363"] # Debian
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type = "t3.small"
  communicator  = "none"

  ami_name           = var.ami_name
  encrypt_boot       = true
  kms_key_id         = var.kms_key_id
  ami_regions        = keys(var.copy_kms_key_ids)
  region_kms_key_ids = var.copy_kms_key_ids
  tags = {
    app = "bench"
  }

  aws_polling {
    delay_seconds = var.poll_seconds
    max_attempts  = 600
  }
}

build {
  sources = ["source.amazon-ebs.bench"]
}
