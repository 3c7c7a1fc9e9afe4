terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = var.region

  # phoenix labels a group with transient tags while it works on it
  # (phoenix:lock, phoenix:launch-template-version, and phoenix:pin for
  # blue-green) and removes them when the deploy has an outcome. Without
  # this, an apply that runs while a deploy holds the group, or after one
  # was killed, would delete the tag that tells phoenix which reference
  # ("$Latest") to put back.
  ignore_tags {
    key_prefixes = ["phoenix:"]
  }
}
