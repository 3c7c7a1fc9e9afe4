# The template of HashiCorp's "build an image" tutorial for AWS, as image
# repos commonly start from it: amazon-ebs, nginx from the distribution's
# packages, the app and its systemd unit copied in with the file
# provisioner and enabled. Changed for the sandbox only in its source AMI
# (Debian 12 instead of Ubuntu), its SSH user (admin) and its endpoint
# (the endpoint and skip_region_validation lines; empty on AWS).
#
#   packer init example/tutorial && packer build example/tutorial

packer {
  required_plugins {
    amazon = {
      version = ">= 1.2.8"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "endpoint" {
  type    = string
  default = env("AWS_ENDPOINT_URL")
}

variable "app_binary" {
  type    = string
  default = "bin/web-app"
}

source "amazon-ebs" "debian" {
  ami_name      = "learn-packer-linux-aws-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  instance_type = "t2.micro"
  region        = "us-west-2"
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    most_recent = true
    owners      = ["136693071363"]
  }
  ssh_username = "admin"

  custom_endpoint_ec2    = var.endpoint
  skip_region_validation = var.endpoint != ""
}

build {
  name    = "learn-packer"
  sources = [
    "source.amazon-ebs.debian"
  ]

  provisioner "shell" {
    inline = [
      "echo Waiting for cloud-init",
      "cloud-init status --wait",
      "echo Installing nginx",
      "sudo apt-get update",
      "sudo apt-get install -y nginx",
      "sudo systemctl enable nginx",
    ]
  }

  provisioner "file" {
    source      = var.app_binary
    destination = "/tmp/web-app"
  }

  provisioner "file" {
    source      = "${path.root}/../app/web-app.service"
    destination = "/tmp/web-app.service"
  }

  provisioner "shell" {
    inline = [
      "sudo mv /tmp/web-app /usr/local/bin/web-app",
      "sudo chmod 0755 /usr/local/bin/web-app",
      "sudo mv /tmp/web-app.service /etc/systemd/system/web-app.service",
      "sudo systemctl daemon-reload",
      "sudo systemctl enable --now web-app",
      "curl -fsS --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:8080/health",
    ]
  }
}
