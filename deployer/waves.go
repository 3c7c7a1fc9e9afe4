package deployer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Wave failure settings.
const (
	KeepOnWaveFailure     = "keep"
	RollbackOnWaveFailure = "rollback"
)

// Rollout brings one AMI to every target of an environment and deploys it
// wave by wave: first, with reads only, every target is checked (its
// group, its policy against the AMI as it will arrive); then the AMI is
// copied to every target's region and account at once; then each wave's
// targets are deployed in parallel, the next wave only once the whole
// wave is live and healthy. The first failed target stops the rollout;
// OnFailure says what becomes of the targets it deployed before.
//
// Ctrl-C (ctx ending) never cuts a wave short: the running wave's targets
// finish their deploys (each ends live and healthy, or rolled back), and
// no further wave starts. Run the same rollout again to continue: targets
// already live and healthy on the AMI are left alone, copies already made
// are found by their phoenix:promoted-from tag.
type Rollout struct {
	// From is where the AMI comes from: for promote, the environment
	// whose live, healthy AMI goes out; for deploy, a Deployer in the
	// region of Image.
	From PromoteEnd
	// Image is the AMI to roll out, in From's region; empty: what From
	// serves (promote).
	Image string
	// Waves are the targets, in order; each wave's in parallel.
	Waves [][]PromoteEnd
	// OnFailure is KeepOnWaveFailure (the default) or
	// RollbackOnWaveFailure.
	OnFailure   string
	CopyTimeout time.Duration
	// Events receives progress; it may be nil.
	Events func(Event)
}

// RolloutResult is every target's outcome.
type RolloutResult struct {
	Outcome Outcome `json:"outcome"`
	// Source is the AMI rolled out, as region:ami.
	Source  string          `json:"source"`
	Message string          `json:"message"`
	Targets []TargetOutcome `json:"targets"`
	// Interrupted: Ctrl-C stopped the rollout between waves.
	Interrupted bool `json:"interrupted,omitempty"`
}

// TargetOutcome is one target's part in a rollout.
type TargetOutcome struct {
	Wave        int    `json:"wave"`
	Environment string `json:"environment,omitempty"`
	Target      string `json:"target"`
	Region      string `json:"region"`
	Group       string `json:"group"`
	AMI         string `json:"ami,omitempty"`
	Previous    string `json:"previous,omitempty"`
	// Status is "succeeded", "already live", "failed", "rolled back"
	// (after a later wave failed), "rollback failed", "not started".
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Target statuses of a rollout.
const (
	StatusSucceeded      = "succeeded"
	StatusAlreadyLive    = "already live"
	StatusFailed         = "failed"
	StatusRolledBack     = "rolled back"
	StatusRollbackFailed = "rollback failed"
	StatusNotStarted     = "not started"
)

func (r *Rollout) emit(e Event) {
	if r.Events == nil {
		return
	}
	e.Time = time.Now().UTC()
	r.Events(e)
}

// Run rolls the AMI out. Before the copies it returns only an error, a
// refusal (nothing changed); after, a result listing every target, with
// the error of the first failed target (or of the interruption).
func (r *Rollout) Run(ctx context.Context) (*RolloutResult, error) {
	if len(r.Waves) == 0 {
		return nil, refuse("a rollout needs at least one target")
	}
	switch r.OnFailure {
	case "":
		r.OnFailure = KeepOnWaveFailure
	case KeepOnWaveFailure, RollbackOnWaveFailure:
	default:
		return nil, refuse("on_wave_failure %q is not one of keep, rollback", r.OnFailure)
	}
	type leg struct {
		wave  int
		promo *Promotion
		check *promoteCheck
		ami   string
		out   *TargetOutcome
	}
	var legs [][]*leg
	var all []*leg
	for i, w := range r.Waves {
		var ws []*leg
		for _, end := range w {
			l := &leg{wave: i + 1, promo: &Promotion{From: r.From, To: end, Image: r.Image, CopyTimeout: r.CopyTimeout, Events: r.Events}}
			d := end.Deployer
			l.out = &TargetOutcome{Wave: i + 1, Environment: end.Environment, Target: d.Target.Name, Region: d.Target.Region, Group: d.Target.Group, Status: StatusNotStarted}
			ws = append(ws, l)
			all = append(all, l)
		}
		legs = append(legs, ws)
	}

	// Reads only: the source, and every target's checks.
	src, err := all[0].promo.source(ctx)
	if err != nil {
		return nil, err
	}
	mark := src.Region + ":" + src.ID
	for _, l := range all {
		if err := l.promo.init(); err != nil {
			return nil, err
		}
		if l.check, err = l.promo.check(ctx, src); err != nil {
			return nil, fmt.Errorf("target %s (%s): %w", l.out.Target, l.out.Region, err)
		}
	}
	res := &RolloutResult{Source: mark}
	for _, l := range all {
		res.Targets = append(res.Targets, *l.out)
	}
	syncOut := func() {
		for i, l := range all {
			res.Targets[i] = *l.out
		}
	}

	// The copies, all at once.
	r.emit(Event{Kind: EventStep, Step: "copy", Message: fmt.Sprintf("bringing %s to %d targets in %s", mark, len(all), regionsOf(all, func(l *leg) string { return l.out.Region }))})
	var wg sync.WaitGroup
	errs := make([]error, len(all))
	for i, l := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.ami, errs[i] = l.promo.bringChecked(ctx, src, l.check)
			l.out.AMI = l.ami
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			all[i].out.Status, all[i].out.Message = StatusFailed, err.Error()
			syncOut()
			res.Outcome, res.Message = OutcomeOf(err), fmt.Sprintf("bringing %s to target %s failed: %v", mark, all[i].out.Target, err)
			if res.Outcome == Refused {
				res.Outcome = RolledBack
			}
			return res, &Error{Outcome: res.Outcome, Err: errors.New(res.Message)}
		}
	}

	// The waves.
	var done []*leg // deployed by this rollout, in order
	for i, ws := range legs {
		if ctx.Err() != nil {
			res.Interrupted = true
			syncOut()
			res.Outcome = RolledBack
			before := fmt.Sprintf("waves 1 to %d are", i)
			if i == 1 {
				before = "wave 1 is"
			}
			res.Message = fmt.Sprintf("interrupted before wave %d of %d: %s live and healthy on %s; run the same command again to continue", i+1, len(legs), before, mark)
			return res, &Error{Outcome: RolledBack, Err: errors.New(res.Message)}
		}
		var names []string
		for _, l := range ws {
			names = append(names, l.out.Target+" ("+l.out.Region+")")
		}
		r.emit(Event{Kind: EventStep, Step: "wave", Message: fmt.Sprintf("wave %d of %d: %s", i+1, len(legs), strings.Join(names, ", "))})
		// A running wave is never cut short by Ctrl-C.
		wctx := context.WithoutCancel(ctx)
		werrs := make([]error, len(ws))
		for j, l := range ws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := l.promo.deploy(wctx, l.ami, l.check.toLive)
				werrs[j] = err
				if res != nil {
					l.out.Previous, l.out.Message = res.Previous, res.Message
				}
				switch {
				case err != nil:
					l.out.Status, l.out.Message = StatusFailed, err.Error()
				case res.Previous == l.ami:
					l.out.Status = StatusAlreadyLive
				default:
					l.out.Status = StatusSucceeded
				}
			}()
		}
		wg.Wait()
		var failed []string
		var first error
		for j, l := range ws {
			if werrs[j] != nil {
				failed = append(failed, l.out.Target)
				if first == nil {
					first = werrs[j]
				}
			} else if l.out.Status == StatusSucceeded {
				done = append(done, l)
			}
		}
		if first == nil {
			r.emit(Event{Kind: EventStep, Step: "wave", Message: fmt.Sprintf("wave %d of %d is live and healthy on %s", i+1, len(legs), mark)})
			continue
		}
		outcome := OutcomeOf(first)
		msg := fmt.Sprintf("wave %d of %d failed (%s): %v", i+1, len(legs), strings.Join(failed, ", "), first)
		if r.OnFailure == RollbackOnWaveFailure && len(done) > 0 {
			r.emit(Event{Kind: EventWarning, Step: "wave", Message: msg + "; rolling back the targets this rollout deployed"})
			var rerrs []string
			for k := len(done) - 1; k >= 0; k-- {
				l := done[k]
				_, err := l.promo.To.Deployer.Rollback(context.WithoutCancel(ctx))
				if err != nil {
					l.out.Status, l.out.Message = StatusRollbackFailed, err.Error()
					rerrs = append(rerrs, l.out.Target+": "+err.Error())
				} else {
					l.out.Status = StatusRolledBack
				}
			}
			if len(rerrs) > 0 {
				outcome = RollbackFailed
				msg += "; rolling back the earlier targets failed: " + strings.Join(rerrs, "; ")
			} else {
				msg += "; the targets deployed before it were rolled back"
			}
		} else if len(done) > 0 {
			msg += "; the targets deployed before it keep " + mark + " (on_wave_failure = \"keep\")"
		}
		if outcome == Succeeded || outcome == Refused {
			outcome = RolledBack
		}
		syncOut()
		res.Outcome, res.Message = outcome, msg
		return res, &Error{Outcome: outcome, Err: errors.New(msg)}
	}
	syncOut()
	res.Outcome = Succeeded
	res.Message = fmt.Sprintf("%s is live and healthy on all %d targets", mark, len(all))
	return res, nil
}

func regionsOf[T any](xs []T, region func(T) string) string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if r := region(x); !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return strings.Join(out, ", ")
}
