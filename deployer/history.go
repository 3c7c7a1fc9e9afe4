package deployer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The deploy history: every deploy and rollback that got past its checks
// (a refused one changes nothing and is only in its output) leaves a
// record in AWS, as a new version of the SSM parameter
// /phoenix/history/GROUP in the target's region and account (GROUP is the
// group's name as the lock path writes it; blue-green's is the asg
// colour's). Parameter Store keeps the last 100 versions of a parameter
// and drops the oldest when a new one is written, so the history holds a
// target's last 100 deploys.
// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-versions.html
// A record is JSON, written once the outcome is known; it stays under the
// standard tier's 4 KB.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html

// HistoryParameterPath is the SSM parameter path of the deploy history.
const HistoryParameterPath = "/phoenix/history/"

// HistoryPath is group's history parameter.
func HistoryPath(group string) string {
	return HistoryParameterPath + strings.TrimSuffix(strings.TrimPrefix(lockPath(group), LockParameterPath), "/")
}

// historyTimeout bounds the write of a record, which runs on a fresh
// context so that a deploy stopped by Ctrl-C is recorded too.
const historyTimeout = 30 * time.Second

// maxRecord is the standard tier's value limit.
const maxRecord = 4096

// History is a target's records, newest first.
type History struct {
	Target    string   `json:"target"`
	Region    string   `json:"region"`
	Group     string   `json:"group"`
	Parameter string   `json:"parameter"`
	Records   []Record `json:"records"`
}

// Record is one deploy or rollback, as the history keeps it.
type Record struct {
	// Version is the history parameter's version that holds the record.
	Version     int64  `json:"version,omitempty"`
	ID          string `json:"id"`
	Action      string `json:"action"`
	Environment string `json:"environment,omitempty"`
	Target      string `json:"target"`
	Region      string `json:"region"`
	Group       string `json:"group"`
	Strategy    string `json:"strategy,omitempty"`
	AMI         string `json:"ami,omitempty"`
	AMIName     string `json:"ami_name,omitempty"`
	// Previous is what the target ran before.
	Previous string `json:"previous,omitempty"`
	// Source is where the AMI came from: the phoenix:promoted-from mark
	// of a promoted copy, or the Packer build.
	Source  string  `json:"source,omitempty"`
	Outcome Outcome `json:"outcome"`
	Message string  `json:"message,omitempty"`
	// Verdicts are the canary judge's verdicts of the deploy's steps.
	Verdicts []*Verdict `json:"verdicts,omitempty"`
	// By is who deployed: the AWS identity and the person or program.
	By      string    `json:"by"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// UnmarshalJSON reads the outcome by its name.
func (o *Outcome) UnmarshalText(b []byte) error {
	for _, c := range []Outcome{Succeeded, RolledBack, RollbackFailed, Refused} {
		if c.String() == string(b) {
			*o = c
			return nil
		}
	}
	return fmt.Errorf("unknown outcome %q", b)
}

// record writes res to the target's history. It never changes the
// outcome: a record that cannot be written is a warning.
func (d *Deployer) record(action string, s *Session, res *Result) {
	if res == nil || res.Outcome == Refused {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	r := Record{ID: s.ID, Action: action, Environment: d.Environment, Target: res.Target, Region: res.Region, Group: d.Target.Group,
		Strategy: res.Strategy, AMI: res.AMI, Previous: res.Previous, Source: d.Source, Outcome: res.Outcome, Message: res.Message,
		By: d.Owner, Started: res.Started, Ended: res.Ended, Verdicts: s.verdicts}
	if s.AMI.ID == res.AMI {
		r.AMIName = s.AMI.Name
		if src := s.AMI.Tags[PromotedFromTag]; src != "" && r.Source == "" {
			r.Source = "promoted from " + src
		}
	}
	if d.Clients.STS != nil {
		if out, err := d.Clients.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err == nil {
			r.By = d.Owner + " as " + aws.ToString(out.Arn)
		}
	}
	b, _ := json.Marshal(r)
	for len(b) > maxRecord && len(r.Verdicts) > 1 {
		r.Verdicts = r.Verdicts[len(r.Verdicts)-1:] // the last says most
		b, _ = json.Marshal(r)
	}
	for len(b) > maxRecord && len(r.Message) > 0 {
		r.Message = r.Message[:len(r.Message)/2] + "…"
		b, _ = json.Marshal(r)
	}
	name := HistoryPath(d.Target.Group)
	_, err := d.Clients.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(string(b)), Type: ssmtypes.ParameterTypeString,
		Overwrite: aws.Bool(true), Description: aws.String("phoenix deploy history of " + d.Target.Group)})
	if err != nil {
		d.emit(Event{Kind: EventWarning, Step: "history", Message: fmt.Sprintf("the deploy could not be recorded in %s: %v", name, err)})
		return
	}
	d.emit(Event{Kind: EventStep, Step: "history", Message: fmt.Sprintf("recorded in %s", name)})
}

// History reads the target's deploy records, newest first.
func (d *Deployer) History(ctx context.Context) ([]Record, error) {
	d.defaults()
	name := HistoryPath(d.Target.Group)
	var out []Record
	p := ssm.NewGetParameterHistoryPaginator(d.Clients.SSM, &ssm.GetParameterHistoryInput{Name: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading the deploy history %s: %w", name, err)
		}
		for _, v := range page.Parameters {
			var r Record
			if err := json.Unmarshal([]byte(aws.ToString(v.Value)), &r); err != nil {
				continue // not a record phoenix wrote
			}
			r.Version = v.Version
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}
