# The encrypted bake of bench_test.go with phoenix-ebs; bench-amazon-ebs.pkr.hcl
# is the same bake with amazon-ebs. Same source image, instance type, keys,
# regions, tags and poll interval; no communicator (the sandbox's sim runtime).

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

source "phoenix-ebs" "bench" {
  region   = "us-east-1"
  endpoint = var.endpoint

  source_ami_filter {
    owners      = ["136693071363"] # Debian
    filters     = { name = "debian-12-amd64-*", architecture = "x86_64" }
    most_recent = true
  }
  instance_type = "t3.small"
  communicator  = "none"

  ami_name           = var.ami_name
  kms_key_id         = var.kms_key_id
  ami_regions        = keys(var.copy_kms_key_ids)
  region_kms_key_ids = var.copy_kms_key_ids
  tags = {
    app = "bench"
  }

  poll_interval = "${var.poll_seconds}s"
}

build {
  sources = ["source.phoenix-ebs.bench"]
}
