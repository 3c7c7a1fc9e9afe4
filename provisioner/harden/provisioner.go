// Package harden is the phoenix-harden provisioner: it applies and verifies
// a hardening profile (controls written as HCL data, embedded in the
// binary), or only verifies it, in one round trip: one script uploaded,
// run once, one report downloaded.
package harden

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hcldec"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/immutable-infra/packer-plugin-phoenix/version"
)

// Provisioner is phoenix-harden.
type Provisioner struct {
	config Config
	script string
}

var _ packersdk.Provisioner = (*Provisioner)(nil)

// ConfigSpec is the HCL2 spec of Config.
func (p *Provisioner) ConfigSpec() hcldec.ObjectSpec { return p.config.FlatMapstructure().HCL2Spec() }

// Prepare validates the configuration and renders the script, so that a
// control that cannot be rendered fails before any instance is launched.
func (p *Provisioner) Prepare(raws ...interface{}) error {
	if err := p.config.Prepare(raws...); err != nil {
		return err
	}
	s, err := Render(p.config.scriptInput(scriptVersion()))
	if err != nil {
		return fmt.Errorf("rendering hardening script: %w", err)
	}
	p.script = s
	return nil
}

func scriptVersion() string {
	if v := version.Version; v != "" {
		return v
	}
	return "dev"
}

type executeData struct {
	// Path is the script's remote path.
	Path string
}

// Provision uploads the script, runs it once and downloads its report:
// three communicator calls, whatever the number of controls.
func (p *Provisioner) Provision(ctx context.Context, ui packersdk.Ui, comm packersdk.Communicator, _ map[string]interface{}) error {
	c := &p.config
	remote := path.Join(c.RemoteFolder, "phoenix-harden-"+randomHex(6)+".sh")

	if c.Mode == ModeVerify {
		ui.Say(fmt.Sprintf("Verifying hardening, changing nothing: phase %s, mode verify, profile %s, %d controls…", c.Phase, c.Profile, len(c.set.Controls)))
	} else {
		ui.Say(fmt.Sprintf("Hardening: phase %s, profile %s, %d controls…", c.Phase, c.Profile, len(c.set.Controls)))
	}
	if err := comm.Upload(remote, strings.NewReader(p.script), nil); err != nil {
		return fmt.Errorf("uploading hardening script to %s: %w", remote, err)
	}

	ictx := c.ctx
	ictx.Data = &executeData{Path: remote}
	command, err := interpolate.Render(c.ExecuteCommand, &ictx)
	if err != nil {
		return fmt.Errorf("execute_command: %w", err)
	}
	cmd := &packersdk.RemoteCmd{Command: command}
	if err := cmd.RunWithUi(ctx, comm, ui); err != nil {
		return fmt.Errorf("running hardening script: %w", err)
	}
	if st := cmd.ExitStatus(); st != 0 {
		return fmt.Errorf("hardening script exited %d (command %q); its output is above", st, command)
	}

	in := c.scriptInput("")
	var buf bytes.Buffer
	if err := comm.Download(in.ReportPath(), &buf); err != nil {
		return fmt.Errorf("downloading hardening report %s: %w", in.ReportPath(), err)
	}
	report, err := ParseReport(buf.Bytes())
	if err != nil {
		return err
	}
	if report.Mode() != c.Mode || report.Phoenix.Phase != c.Phase {
		return fmt.Errorf("hardening report %s is of phase %s, mode %s; want phase %s, mode %s", in.ReportPath(), report.Phoenix.Phase, report.Mode(), c.Phase, c.Mode)
	}

	if !report.Phoenix.SupportedDistro {
		ui.Error(fmt.Sprintf("phoenix-harden: %s is not a supported distro (%s); controls without a distros list ran anyway", report.Phoenix.Distro, strings.Join(Distros, ", ")))
	}
	var table strings.Builder
	if err := WriteTable(&table, report); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(table.String(), "\n"), "\n") {
		ui.Message(line)
	}

	if c.Audit != "" {
		a := report.Phoenix.Audit
		switch {
		case a == nil:
			return fmt.Errorf("audit: the hardening report has no audit by %s", c.Audit)
		case a.Error != "" || a.HardeningIndex < 0:
			return fmt.Errorf("audit: %s did not complete: %s", c.Audit, a.Error)
		}
		ui.Message(fmt.Sprintf("audit: Lynis %s hardening index %d (%d warnings, %d suggestions; in the report)", a.Version, a.HardeningIndex, len(a.Warnings), len(a.Suggestions)))
	}

	if c.ReportPath != "" {
		files, err := writeLocalReports(c.ReportPath, c.PackerBuildName, c.Phase, c.Mode, buf.Bytes(), report)
		if err != nil {
			return err
		}
		ui.Message("reports: " + strings.Join(files, ", "))
	}
	return Gate(report, c.MinScore, c.FailOn)
}

// writeLocalReports writes the JSON as downloaded and the JUnit XML into
// dir, named for the build, phase and mode so that parallel builds, and an
// apply and a verify in one build, do not collide.
func writeLocalReports(dir, build, phase, mode string, raw []byte, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report_path: %w", err)
	}
	base := "hardening"
	if phase == PhaseCleanup {
		base = "cleanup"
	}
	if mode == ModeVerify {
		base += "-verify"
	}
	if build != "" {
		base = build + "-" + base
	}
	jsonPath := filepath.Join(dir, base+".json")
	xmlPath := filepath.Join(dir, base+".junit.xml")
	if err := os.WriteFile(jsonPath, raw, 0o644); err != nil {
		return nil, fmt.Errorf("report_path: %w", err)
	}
	var x bytes.Buffer
	if err := WriteJUnit(&x, r); err != nil {
		return nil, fmt.Errorf("report_path: %w", err)
	}
	if err := os.WriteFile(xmlPath, x.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("report_path: %w", err)
	}
	return []string{jsonPath, xmlPath}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "0"
	}
	return hex.EncodeToString(b)
}
