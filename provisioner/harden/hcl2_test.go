package harden

import (
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// What Packer core does with a provisioner block: decode its body with
// ConfigSpec, evaluate, and pass the cty value to Prepare.
func TestPrepareFromPackerHCL(t *testing.T) {
	src := `
profile   = "cis-level1"
min_score = 90
fail_on   = "high"
params = {
  allow_ip_forward = true
  ssh_allow_users  = "admin"
}
skip {
  id     = "kmod-usb-storage"
  reason = "licence dongles"
}
controls = <<-EOF
  control "app-dir" {
    title      = "the app directory is private"
    severity   = "medium"
    references = { internal = ["SEC-7"] }
    check      = "d=/srv/app; echo \"$$${d%/*}\"; test -d \"$ROOT$d\""
  }
EOF
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "build.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	var p Provisioner
	val, diags := hcldec.Decode(f.Body, p.ConfigSpec(), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if err := p.Prepare(val); err != nil {
		t.Fatal(err)
	}
	c := p.config
	if c.Profile != "cis-level1" || c.MinScore != 90 || c.FailOn != "high" || c.params["allow_ip_forward"] != "true" || c.params["ssh_allow_users"] != "admin" {
		t.Errorf("config %+v params %v", c, c.params)
	}
	if len(c.Skip) != 1 || c.Skip[0].Reason != "licence dongles" {
		t.Errorf("skip %+v", c.Skip)
	}
	app := c.set.Lookup("app-dir")
	if app == nil || !strings.Contains(app.Check, `echo "${d%/*}"`) {
		t.Fatalf("app-dir check after both unescapes: %+v", app)
	}
	if !strings.Contains(p.script, `echo "${d%/*}"`) {
		t.Error("rendered script lacks the shell expansion")
	}
}

// The verify-only example on the docs page is a valid template: every
// phoenix-harden block in it decodes and prepares, in mode verify.
func TestDocsVerifyExamplePrepares(t *testing.T) {
	page, err := os.ReadFile("../../docs/provisioners/harden.mdx")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(page), "\n## Verify only\n")
	if !ok {
		t.Fatal("no Verify only section")
	}
	_, rest, ok := strings.Cut(section, "```hcl\n")
	if !ok {
		t.Fatal("no hcl example in the Verify only section")
	}
	src, _, _ := strings.Cut(rest, "```")
	f, diags := hclsyntax.ParseConfig([]byte(src), "verify.pkr.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	n := 0
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "build" {
			continue
		}
		for _, pb := range b.Body.Blocks {
			if pb.Type != "provisioner" || len(pb.Labels) != 1 || pb.Labels[0] != "phoenix-harden" {
				continue
			}
			var p Provisioner
			val, diags := hcldec.Decode(pb.Body, p.ConfigSpec(), nil)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if err := p.Prepare(val); err != nil {
				t.Fatalf("provisioner block %d: %v", n, err)
			}
			if p.config.Mode != ModeVerify {
				t.Errorf("provisioner block %d: mode %q", n, p.config.Mode)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("the example has no phoenix-harden provisioner")
	}
}
