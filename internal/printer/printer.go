// Package printer is the one place deploy output is formatted: progress
// lines for people and JSON lines for programs, from the same events,
// plans, statuses and results. The phoenix CLI and the phoenix-deploy
// post-processor both print through it.
package printer

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/deployer"
)

// Printer prints what a deploy reports.
type Printer interface {
	Event(deployer.Event)
	Plan(*deployer.Plan)
	Status(*deployer.Status)
	Result(*deployer.Result)
	// Prune prints a line per image of the family, then a summary.
	Prune(*deployer.PruneResult)
	// History prints a target's deploy records, newest first.
	History(*deployer.History)
	// Rollout prints every target's outcome of a rollout in waves.
	Rollout(*deployer.RolloutResult)
}

// Formats New knows.
const (
	Text = "text"
	JSON = "json"
)

// New returns the printer for format ("text" or "json") writing to w.
func New(format string, w io.Writer) (Printer, error) {
	switch format {
	case Text, "":
		return &textPrinter{w: w, last: map[string]string{}}, nil
	case JSON:
		return &jsonPrinter{enc: json.NewEncoder(w)}, nil
	}
	return nil, fmt.Errorf("output format %q: use text or json", format)
}

type jsonPrinter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (p *jsonPrinter) write(v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.enc.Encode(v)
}

func (p *jsonPrinter) Event(e deployer.Event) {
	p.write(struct {
		Type string `json:"type"`
		deployer.Event
	}{"event", e})
}

func (p *jsonPrinter) Plan(pl *deployer.Plan) {
	p.write(struct {
		Type string `json:"type"`
		*deployer.Plan
	}{"plan", pl})
}

func (p *jsonPrinter) Status(s *deployer.Status) {
	p.write(struct {
		Type string `json:"type"`
		*deployer.Status
	}{"status", s})
}

func (p *jsonPrinter) Result(r *deployer.Result) {
	p.write(struct {
		Type string `json:"type"`
		*deployer.Result
	}{"result", r})
}

func (p *jsonPrinter) Prune(r *deployer.PruneResult) {
	for _, im := range r.Images {
		p.write(struct {
			Type string `json:"type"`
			deployer.PruneImage
		}{"image", im})
	}
	for _, sn := range r.LeftBehindSnapshots {
		p.write(struct {
			Type string `json:"type"`
			deployer.PruneSnapshot
		}{"left_behind_snapshot", sn})
	}
	p.write(struct {
		Type string `json:"type"`
		deployer.PruneSummary
	}{"prune", r.PruneSummary})
}

func (p *jsonPrinter) History(h *deployer.History) {
	for _, r := range h.Records {
		p.write(struct {
			Type string `json:"type"`
			deployer.Record
		}{"record", r})
	}
}

func (p *jsonPrinter) Rollout(r *deployer.RolloutResult) {
	p.write(struct {
		Type string `json:"type"`
		*deployer.RolloutResult
	}{"rollout", r})
}

func (p *textPrinter) Rollout(r *deployer.RolloutResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line("Rollout of %s: %s", r.Source, r.Outcome)
	for _, t := range r.Targets {
		ami := t.AMI
		if ami == "" {
			ami = "-"
		}
		p.line("  wave %d  %-12s %-14s %-16s %-22s %s", t.Wave, t.Target, t.Region, t.Group, ami, t.Status)
	}
	p.line("  %s", r.Message)
}

func (p *textPrinter) History(h *deployer.History) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line("History of %s in %s (group %s, %s), newest first", h.Target, h.Region, h.Group, h.Parameter)
	if len(h.Records) == 0 {
		p.line("  no deploy recorded")
		return
	}
	for _, r := range h.Records {
		what := r.AMI
		if r.AMIName != "" {
			what += " (" + r.AMIName + ")"
		}
		if r.Previous != "" && r.Previous != r.AMI {
			what += " over " + r.Previous
		}
		env := ""
		if r.Environment != "" {
			env = " to " + r.Environment
		}
		p.line("  %-4s %s  %-8s %s%s: %s, %s, by %s", fmt.Sprintf("#%d", r.Version), r.Ended.UTC().Format(time.RFC3339), r.Action, what, env, r.Outcome, r.Ended.Sub(r.Started).Round(time.Second), r.By)
		if r.Source != "" {
			p.line("       source: %s", r.Source)
		}
		if r.Outcome != deployer.Succeeded && r.Message != "" {
			p.line("       %s", firstLine(r.Message))
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// textPrinter writes one line per step and one per change of progress;
// a pass that reads the same as the last one prints nothing.
type textPrinter struct {
	mu   sync.Mutex
	w    io.Writer
	last map[string]string
}

func (p *textPrinter) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *textPrinter) Event(e deployer.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case deployer.EventProgress:
		l := Progress(e)
		if l == "" || p.last[e.Target] == l {
			return
		}
		p.last[e.Target] = l
		p.line("%s: %s", e.Target, l)
	case deployer.EventWarning:
		p.line("%s: warning: %s", e.Target, e.Message)
	default:
		p.line("%s: %s", e.Target, e.Message)
	}
}

// Progress is a progress event in words: the current step, the refresh's
// status and percentage, how many targets are healthy on the AMI, and
// what is being waited for.
func Progress(e deployer.Event) string {
	var parts []string
	if e.Step != "" {
		parts = append(parts, "["+e.Step+"]")
	}
	if r := e.Refresh; r != nil {
		parts = append(parts, fmt.Sprintf("refresh %s %d%%", r.Status, r.Percent))
	}
	if h := e.Health; h != nil {
		parts = append(parts, fmt.Sprintf("healthy %d/%d on %s", h.Healthy, h.Total, h.AMI))
		if h.Draining > 0 {
			parts = append(parts, fmt.Sprintf("%d draining", h.Draining))
		}
	}
	l := strings.Join(parts, " ")
	why := e.Message
	if why == "" && e.Refresh != nil {
		why = e.Refresh.Reason
	}
	if why == "" && e.Health != nil && len(e.Health.Problems) > 0 {
		why = e.Health.Problems[0]
	}
	switch {
	case why == "":
	case len(parts) == 1 && e.Step != "":
		l += " " + why // "[copy] copy ami-… is pending"
	default:
		l += ": " + why
	}
	return l
}

func (p *textPrinter) Result(r *deployer.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	outcome := r.Outcome.String()
	if r.Interrupted {
		outcome = "interrupted"
	}
	p.line("%s: %s: %s", r.Target, outcome, r.Message)
}

func tplString(t *deployer.TemplateVersion) string {
	if t == nil {
		return "none (launch configuration)"
	}
	if t.Alias != "" {
		return fmt.Sprintf("%s version %d (%s, now %s)", t.ID, t.Version, t.Alias, t.AMI)
	}
	return fmt.Sprintf("%s version %d (%s)", t.ID, t.Version, t.AMI)
}

func amis(uses []deployer.AMIUse) string {
	if len(uses) == 0 {
		return "none"
	}
	var parts []string
	for _, u := range uses {
		parts = append(parts, fmt.Sprintf("%s (%d)", u.AMI, u.Instances))
	}
	return strings.Join(parts, ", ")
}

func (p *textPrinter) health(h *deployer.Health, targets bool) {
	if h == nil {
		return
	}
	if len(h.TargetGroups) == 0 {
		p.line("  %-14s %d/%d healthy on %s (no target groups: the group's own health)", "health", h.Healthy, h.Total, h.AMI)
	}
	for _, tg := range h.TargetGroups {
		p.line("  %-14s %s: %d/%d healthy", "target group", tg.Name, tg.Healthy, len(tg.Targets))
		if !targets {
			continue
		}
		for _, t := range tg.Targets {
			l := fmt.Sprintf("    %-20s %-9s %s", t.ID, t.State, t.AMI)
			if t.Reason != "" {
				l += "  " + t.Reason
			}
			p.line("%s", l)
		}
	}
}

func (p *textPrinter) Plan(pl *deployer.Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line("Plan for %s in %s (group %s, strategy %s)", pl.Target, pl.Region, pl.Group, pl.Strategy)
	p.line("  %-14s %s", "now", tplString(pl.Current))
	p.line("  %-14s %d desired; AMIs in use: %s", "instances", pl.Desired, amis(pl.AMIs))
	if !pl.States.Empty() {
		p.line("  %-14s %s", "", pl.States)
	}
	enc := "not encrypted"
	if pl.AMI.Encrypted {
		enc = "encrypted"
	}
	p.line("  %-14s %s (%s), %s, %s", "new AMI", pl.AMI.ID, pl.AMI.Name, pl.AMI.State, enc)
	if v := pl.Policy; v != nil {
		verdict := "admitted"
		if !v.Admitted {
			verdict = "not admitted"
		}
		rules := "rules"
		if len(v.Rules) == 1 {
			rules = "rule"
		}
		p.line("  %-14s %s (%d %s)", "policy", verdict, len(v.Rules), rules)
		for _, r := range v.Rules {
			mark := "ok  "
			if !r.Passed {
				mark = "FAIL"
			}
			p.line("    %s %s: %s", mark, r.Rule, r.Detail)
		}
	}
	p.colours(pl.Colours)
	p.health(pl.Health, false)
	p.line("Changes:")
	for i, c := range pl.Changes {
		p.line("  %d. %s %s", i+1, c.Action, c.Detail)
	}
}

func (p *textPrinter) Status(s *deployer.Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line("Status of %s in %s (group %s)", s.Target, s.Region, s.Group)
	p.line("  %-14s %s", "template", tplString(s.Template))
	p.line("  %-14s %d desired, %d in service", "capacity", s.Desired, s.InService)
	if !s.States.Empty() {
		p.line("  %-14s %s", "", s.States)
	}
	for _, w := range s.WarmPools {
		p.line("  %-14s %s", "warm pool", w)
	}
	p.line("  %-14s %s", "AMIs in use", amis(s.AMIs))
	p.colours(s.Colours)
	if s.StickinessSeconds > 0 {
		d := time.Duration(s.StickinessSeconds) * time.Second
		p.line("  %-14s target group stickiness %s: a client stays on the colour that first served it for %s, whatever the weights", "stickiness", d, d)
	}
	if r := s.Refresh; r != nil {
		l := fmt.Sprintf("%s %s %d%% (to %s version %s)", r.ID, r.Status, r.Percent, r.Template, r.Version)
		if r.Reason != "" {
			l += ": " + r.Reason
		}
		p.line("  %-14s %s", "last refresh", l)
	} else {
		p.line("  %-14s none", "last refresh")
	}
	p.health(s.Health, true)
	if g := s.Gates; g != nil {
		for i, a := range g.Alarms {
			label := ""
			if i == 0 {
				label = "alarms"
			}
			l := a.Name + " " + a.State
			if a.Text != "" {
				l = a.Text
			}
			p.line("  %-14s %s", label, l)
		}
		if v := g.Judge; v != nil {
			p.line("  %-14s last %s: %s", "judge", deployer.JudgeStatusWindow, v)
		}
	}
	if r := s.LastDeploy; r != nil {
		what := r.AMI
		if r.Previous != "" && r.Previous != r.AMI {
			what += " over " + r.Previous
		}
		p.line("  %-14s %s: %s (history #%d)", "last deploy", what, r.Outcome, r.Version)
		for _, v := range r.Verdicts {
			p.line("    %s", v)
		}
	}
	if pm := s.Parameter; pm != nil {
		sel := ""
		if pm.Selector != "" {
			sel = " (selector " + pm.Selector + ")"
		}
		p.line("  %-14s SSM %s%s", "parameter", pm.Name, sel)
		for _, v := range pm.Versions {
			labels := ""
			if len(v.Labels) > 0 {
				labels = ", labels " + strings.Join(v.Labels, ",")
			}
			p.line("    version %d: %s, %s%s", v.Version, v.AMI, v.Modified.Format(time.RFC3339), labels)
		}
	}
	for _, g := range sortedKeys(s.Held) {
		p.line("  %-14s %q is held on a numbered launch template version by a deploy that stopped; its reference was %s: run the same deploy again, or phoenix rollback", "held", g, s.Held[g])
	}
	if s.Lock != nil {
		p.line("  %-14s held by %s", "lock", s.Lock)
	} else {
		p.line("  %-14s free", "lock")
	}
}

// colours prints blue-green's two colours, one line each.
func (p *textPrinter) colours(cs []deployer.ColourStatus) {
	for i, c := range cs {
		label := ""
		if i == 0 {
			label = "colours"
		}
		state := "idle"
		if c.Live {
			state = "live"
		}
		l := fmt.Sprintf("%s (%s) %s %d%%, %s, %d desired (min %d), target group %s", c.Colour, c.Group, state, c.Traffic, tplString(c.Template), c.Desired, c.Min, c.TargetGroup)
		if c.Pin != "" {
			l += "; pinned: " + c.Pin
		}
		if c.ScaleInAt != nil {
			l += "; kept warm, scales to 0 at " + c.ScaleInAt.Format(time.RFC3339)
		}
		p.line("  %-14s %s", label, l)
	}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (p *textPrinter) Prune(r *deployer.PruneResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dry := ""
	if r.DryRun {
		dry = " (dry run: nothing is changed)"
	}
	p.line("Pruning image family %s in %s: keeping the newest %d and every image in use%s", r.Family, r.Region, r.Keep, dry)
	for _, im := range r.Images {
		why := strings.Join(im.Reasons, "; ")
		if im.Action == deployer.PruneDeregister {
			why = "no snapshots"
			if len(im.Snapshots) > 0 {
				why = "snapshots " + strings.Join(im.Snapshots, ", ")
			}
		}
		l := fmt.Sprintf("  %-10s  %s (%s): %s", im.Action, im.ID, im.Name, why)
		if im.Error != "" {
			l += ": failed: " + im.Error
		}
		p.line("%s", l)
	}
	for _, sn := range r.LeftBehindSnapshots {
		l := fmt.Sprintf("  %-10s  %s: left behind by an earlier prune (its image %s is gone)", "delete", sn.ID, sn.Image)
		if sn.Error != "" {
			l += ": failed: " + sn.Error
		}
		p.line("%s", l)
	}
	switch {
	case r.DryRun:
		snaps := len(r.LeftBehindSnapshots)
		for _, im := range r.Images {
			if im.Action == deployer.PruneDeregister {
				snaps += len(im.Snapshots)
			}
		}
		p.line("%s: dry run: would deregister %s and delete %s, keep %d", r.Family, plural(r.ToDeregister, "image"), plural(snaps, "snapshot"), r.Kept)
	case r.Failed > 0:
		p.line("%s: deregistered %d of %s, deleted %s, kept %d; %d failed", r.Family, r.Deregistered, plural(r.ToDeregister, "image"), plural(r.SnapshotsDeleted, "snapshot"), r.Kept, r.Failed)
	default:
		p.line("%s: deregistered %s, deleted %s, kept %d", r.Family, plural(r.Deregistered, "image"), plural(r.SnapshotsDeleted, "snapshot"), r.Kept)
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
