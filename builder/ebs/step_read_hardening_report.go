package ebs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/packer-plugin-sdk/multistep"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
)

// HardeningReportPath is where phoenix-harden leaves its report in the image.
const HardeningReportPath = "/var/lib/phoenix/hardening.json"

// stepReadHardeningReport reads the hardening report, when the image has
// one, so that its profile and score become AMI tags.
type stepReadHardeningReport struct{}

func (s *stepReadHardeningReport) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	_, _, ui := from(state)
	comm, ok := state.Get("communicator").(packersdk.Communicator)
	if !ok || comm == nil {
		return multistep.ActionContinue
	}
	cmd := &packersdk.RemoteCmd{Command: "test -f " + HardeningReportPath}
	if err := cmd.RunWithUi(ctx, comm, ui); err != nil || cmd.ExitStatus() != 0 {
		ui.Say("No hardening report in the image; the AMI gets no hardening tags")
		return multistep.ActionContinue
	}
	var buf bytes.Buffer
	if err := comm.Download(HardeningReportPath, &buf); err != nil {
		return halt(state, fmt.Errorf("downloading %s: %w", HardeningReportPath, err))
	}
	r, err := parseHardeningReport(buf.Bytes())
	if err != nil {
		return halt(state, fmt.Errorf("reading %s: %w", HardeningReportPath, err))
	}
	if r.LynisIndex >= 0 {
		ui.Say(fmt.Sprintf("Hardening report: profile %s, score %g, Lynis hardening index %d", r.Profile, r.Score, r.LynisIndex))
	} else {
		ui.Say(fmt.Sprintf("Hardening report: profile %s, score %g", r.Profile, r.Score))
	}
	state.Put(stateHardening, r)
	gd := &packerbuilderdata.GeneratedData{State: state}
	gd.Put("HardeningProfile", r.Profile)
	gd.Put("HardeningScore", r.Score)
	if r.LynisIndex >= 0 {
		gd.Put("AuditLynisIndex", r.LynisIndex)
	}
	return multistep.ActionContinue
}

func (s *stepReadHardeningReport) Cleanup(multistep.StateBag) {}

// parseHardeningReport reads the profile and score from a phoenix-harden
// report (InSpec-shaped JSON with a phoenix summary).
func parseHardeningReport(data []byte) (*hardeningReport, error) {
	var doc struct {
		Profile  string   `json:"profile"`
		Score    *float64 `json:"score"`
		Profiles []struct {
			Name string `json:"name"`
		} `json:"profiles"`
		Statistics struct {
			Score *float64 `json:"score"`
		} `json:"statistics"`
		Phoenix struct {
			Profile string   `json:"profile"`
			Score   *float64 `json:"score"`
			Audit   *struct {
				Tool  string `json:"tool"`
				Index *int   `json:"hardening_index"`
			} `json:"audit"`
		} `json:"phoenix"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	r := &hardeningReport{Profile: doc.Phoenix.Profile, LynisIndex: -1}
	// A failed audit (index -1) fails the provisioner, so only a finished
	// one reaches an image.
	if a := doc.Phoenix.Audit; a != nil && a.Tool == "lynis" && a.Index != nil && *a.Index >= 0 {
		r.LynisIndex = *a.Index
	}
	if r.Profile == "" {
		r.Profile = doc.Profile
	}
	if r.Profile == "" && len(doc.Profiles) > 0 {
		r.Profile = doc.Profiles[0].Name
	}
	switch {
	case doc.Phoenix.Score != nil:
		r.Score = *doc.Phoenix.Score
	case doc.Score != nil:
		r.Score = *doc.Score
	case doc.Statistics.Score != nil:
		r.Score = *doc.Statistics.Score
	default:
		return nil, fmt.Errorf("the report has no score")
	}
	if r.Profile == "" {
		return nil, fmt.Errorf("the report names no profile")
	}
	return r, nil
}
