package harden

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Control statuses in a report. InSpec's result status is passed, failed,
// skipped (not_applicable, waived) or error.
const (
	StatusPassed        = "passed"
	StatusFailed        = "failed"
	StatusError         = "error"
	StatusNotApplicable = "not_applicable"
	StatusWaived        = "waived"
)

// Report is the JSON the script writes, shaped like InSpec's JSON reporter
// with a "phoenix" object and per-control status, changed and apply_log.
type Report struct {
	Platform struct {
		Name    string `json:"name"`
		Release string `json:"release"`
	} `json:"platform"`
	Profiles   []ReportProfile `json:"profiles"`
	Statistics struct {
		Duration float64 `json:"duration"`
	} `json:"statistics"`
	Version string        `json:"version"`
	Phoenix ReportSummary `json:"phoenix"`
}

// ReportProfile is one profile of a report.
type ReportProfile struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	Controls []ReportControl `json:"controls"`
}

// ReportSummary is what phoenix adds at the top level.
type ReportSummary struct {
	Phase            string         `json:"phase"`
	Mode             string         `json:"mode"` // apply or verify; reports of older versions have none (apply)
	Profile          string         `json:"profile"`
	Distro           string         `json:"distro"`
	SupportedDistro  bool           `json:"supported_distro"`
	Score            int            `json:"score"`
	PassedWeight     int            `json:"passed_weight"`
	ApplicableWeight int            `json:"applicable_weight"`
	Counts           map[string]int `json:"counts"`
	Audit            *ReportAudit   `json:"audit,omitempty"`
	Started          string         `json:"started"`
	Finished         string         `json:"finished"`
}

// ReportAudit is what the independent auditor (the audit setting) found.
type ReportAudit struct {
	Tool    string `json:"tool"`
	Version string `json:"version"`
	// HardeningIndex is Lynis's index, 0-100; -1 when the audit failed.
	HardeningIndex  int            `json:"hardening_index"`
	InstalledForRun bool           `json:"installed_for_run"`
	Error           string         `json:"error"`
	Warnings        []LynisFinding `json:"warnings"`
	Suggestions     []LynisFinding `json:"suggestions"`
	Duration        float64        `json:"duration"`
}

// ReportControl is one control's outcome.
type ReportControl struct {
	ID       string              `json:"id"`
	Title    string              `json:"title"`
	Impact   float64             `json:"impact"`
	Tags     map[string]any      `json:"tags"`
	Status   string              `json:"status"`
	Changed  bool                `json:"changed"`
	Waiver   *ReportWaiver       `json:"waiver_data,omitempty"`
	ApplyLog string              `json:"apply_log"`
	Results  []ReportResult      `json:"results"`
	Source   map[string]any      `json:"source_location"`
	Refs     []map[string]string `json:"refs"`
}

// ReportWaiver is InSpec's waiver_data of a waived control.
type ReportWaiver struct {
	Justification string `json:"justification"`
	Run           bool   `json:"run"`
	Skipped       bool   `json:"skipped_due_to_waiver"`
}

// ReportResult is InSpec's per-test result; phoenix has one per control.
type ReportResult struct {
	Status   string  `json:"status"`
	CodeDesc string  `json:"code_desc"`
	Message  string  `json:"message"`
	RunTime  float64 `json:"run_time"`
}

// Severity reads the severity tag.
func (c ReportControl) Severity() Severity {
	s, _ := c.Tags["severity"].(string)
	return Severity(s)
}

// Evidence is the control's check output (or why it did not run).
func (c ReportControl) Evidence() string {
	if len(c.Results) == 0 {
		return ""
	}
	return c.Results[0].Message
}

// ParseReport reads a report and checks that it is complete.
func ParseReport(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parsing hardening report: %w", err)
	}
	if len(r.Profiles) != 1 {
		return nil, fmt.Errorf("parsing hardening report: want 1 profile, got %d", len(r.Profiles))
	}
	for _, c := range r.Profiles[0].Controls {
		switch c.Status {
		case StatusPassed, StatusFailed, StatusError, StatusNotApplicable, StatusWaived:
		default:
			return nil, fmt.Errorf("parsing hardening report: control %q has unknown status %q", c.ID, c.Status)
		}
	}
	return &r, nil
}

// Controls of the report's profile.
func (r *Report) Controls() []ReportControl { return r.Profiles[0].Controls }

// Score is the weighted share of passed controls among the applicable
// ones (passed, failed, error), 0 to 100, rounded down so 100 means every
// applicable control passed. Waived and not applicable controls do not
// count; with nothing applicable the score is 0.
func Score(controls []ReportControl) int {
	passed, applicable := 0, 0
	for _, c := range controls {
		w := c.Severity().Weight()
		switch c.Status {
		case StatusPassed:
			passed += w
			applicable += w
		case StatusFailed, StatusError:
			applicable += w
		}
	}
	if applicable == 0 {
		return 0
	}
	return passed * 100 / applicable
}

// Gate decides whether the build may go on: the score must reach
// minScore, and no control at or above failOn may be failed or in error
// (an error proves nothing, so it counts as a failure). failOn "none"
// disables the severity gate.
func Gate(r *Report, minScore int, failOn string) error {
	var bad []string
	for _, c := range r.Controls() {
		if c.Status != StatusFailed && c.Status != StatusError {
			continue
		}
		if failOn != "none" && c.Severity().AtLeast(Severity(failOn)) {
			bad = append(bad, fmt.Sprintf("  %s (%s, %s): %s", c.ID, c.Severity(), c.Status, oneLine(c.Evidence(), 300)))
		}
	}
	score := Score(r.Controls())
	var msgs []string
	if score < minScore {
		msgs = append(msgs, fmt.Sprintf("hardening score %d is below min_score %d", score, minScore))
	}
	if len(bad) > 0 {
		msgs = append(msgs, fmt.Sprintf("%d control(s) at or above fail_on %q did not pass:\n%s", len(bad), failOn, strings.Join(bad, "\n")))
	}
	if score < minScore && len(bad) == 0 {
		var all []string
		for _, c := range r.Controls() {
			if c.Status == StatusFailed || c.Status == StatusError {
				all = append(all, fmt.Sprintf("  %s (%s, %s): %s", c.ID, c.Severity(), c.Status, oneLine(c.Evidence(), 300)))
			}
		}
		if len(all) > 0 {
			msgs = append(msgs, "not passed:\n"+strings.Join(all, "\n"))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(msgs, "\n"))
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// WriteTable prints one line per control, the most severe problems first.
func WriteTable(w io.Writer, r *Report) error {
	order := map[string]int{StatusError: 0, StatusFailed: 1, StatusPassed: 2, StatusNotApplicable: 3, StatusWaived: 4}
	cs := append([]ReportControl(nil), r.Controls()...)
	sort.SliceStable(cs, func(i, j int) bool {
		if order[cs[i].Status] != order[cs[j].Status] {
			return order[cs[i].Status] < order[cs[j].Status]
		}
		return cs[i].Severity().rank() > cs[j].Severity().rank()
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSEVERITY\tCHANGED\tCONTROL\tEVIDENCE")
	for _, c := range cs {
		changed := "-"
		if c.Changed {
			changed = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Status, c.Severity(), changed, c.ID, oneLine(c.Evidence(), 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := r.Phoenix.Counts
	what, changed := r.Phoenix.Phase, fmt.Sprintf("%d changed", n["changed"])
	if r.Mode() == ModeVerify {
		what, changed = r.Phoenix.Phase+", mode verify", "verified, changed nothing"
	}
	_, err := fmt.Fprintf(w, "score %d/100 on %s (%s, profile %s): %d passed, %d failed, %d error, %d not applicable, %d waived; %s\n",
		Score(r.Controls()), r.Phoenix.Distro, what, r.Phoenix.Profile,
		n[StatusPassed], n[StatusFailed], n[StatusError], n[StatusNotApplicable], n[StatusWaived], changed)
	return err
}

// Mode is the report's mode; reports without one are of apply runs.
func (r *Report) Mode() string {
	if r.Phoenix.Mode == "" {
		return ModeApply
	}
	return r.Phoenix.Mode
}

// JUnit types: one testsuite per report, one testcase per control.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     float64     `xml:"time,attr"`
	Props    []junitProp `xml:"properties>property"`
	Cases    []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML for CI test views.
func WriteJUnit(w io.Writer, r *Report) error {
	s := junitSuite{
		Name: "phoenix-harden." + r.Phoenix.Profile,
		Time: r.Statistics.Duration,
		Props: []junitProp{
			{Name: "phase", Value: r.Phoenix.Phase},
			{Name: "mode", Value: r.Mode()},
			{Name: "distro", Value: r.Phoenix.Distro},
			{Name: "score", Value: fmt.Sprint(Score(r.Controls()))},
		},
	}
	for _, c := range r.Controls() {
		tc := junitCase{Name: c.ID + ": " + c.Title, ClassName: "phoenix-harden." + r.Phoenix.Phase + "." + string(c.Severity()), SystemOut: c.ApplyLog}
		if len(c.Results) > 0 {
			tc.Time = c.Results[0].RunTime
		}
		msg := &junitMessage{Message: oneLine(c.Evidence(), 200), Type: string(c.Severity()), Text: c.Evidence()}
		switch c.Status {
		case StatusFailed:
			tc.Failure = msg
			s.Failures++
		case StatusError:
			tc.Error = msg
			s.Errors++
		case StatusNotApplicable, StatusWaived:
			tc.Skipped = msg
			s.Skipped++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
