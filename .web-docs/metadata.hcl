# The integration's metadata for Packer's integration pages. The component
# READMEs next to it and README.md are generated from docs/ by
# `make generate` (scripts/web-docs.sh); this file is written by hand.
integration {
  name        = "Phoenix"
  description = "Bake encrypted, hardened, tagged AMIs and roll them out behind load balancer health checks, with rollback."
  identifier  = "packer/immutable-infra/phoenix"
  docs {
    process_docs    = true
    readme_location = "./README.md"
    external_url    = "https://github.com/immutable-infra/packer-plugin-phoenix"
  }
  license {
    type = "MPL-2.0"
    url  = "https://github.com/immutable-infra/packer-plugin-phoenix/blob/main/LICENSE"
  }
  component {
    type = "builder"
    name = "Phoenix EBS"
    slug = "ebs"
  }
  component {
    type = "provisioner"
    name = "Phoenix Harden"
    slug = "harden"
  }
  component {
    type = "post-processor"
    name = "Phoenix Deploy"
    slug = "deploy"
  }
}
