package ebs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/packer-plugin-sdk/multistep"
	"github.com/hashicorp/packer-plugin-sdk/packerbuilderdata"
)

// stepPublishSSMParameters writes each ssm_parameter's region's AMI id to
// the parameter, waits until Parameter Store has validated every version
// it wrote, then labels them. It is the build's last step, so a build
// that fails before it writes nothing, and it marks the build's AMIs as
// kept.
//
// Its Cleanup, when the build fails or is cancelled after it began
// writing, puts back what was there, newest write first: the labels it
// moved go back to the versions they were on (labels that were nowhere
// are removed), the previous value goes back as a new version (and is
// waited for, as it is validated like any other), and a parameter the
// build created is deleted once the version it wrote is readable. A
// parameter that someone else changed after the build wrote it is left
// alone, and said so.
type stepPublishSSMParameters struct {
	writes []*ssmWrite // in the order written; a write whose answer was lost counts
}

// ssmWrite is one parameter the step writes, and what its Cleanup needs
// to undo the write.
type ssmWrite struct {
	SSMParameter // with its region resolved

	ami         string
	existed     bool  // the parameter existed before the build wrote it
	prevVersion int64 // its latest version then,
	prevValue   string
	labelsWere  map[string]int64 // and the version each of Labels was on (absent: none)
	version     int64            // the version written; 0 while unknown
	putAt       time.Time
	labelled    bool // labelling began
}

// state key of the parameters the build published ([]PublishedParameter)
const stateSSMParameters = "ssm_parameters"

func (s *stepPublishSSMParameters) Run(ctx context.Context, state multistep.StateBag) multistep.StepAction {
	c, _, ui := from(state)
	amis, ok := state.Get(stateAMIs).(*amiSet)
	if !ok {
		return halt(state, errors.New("no AMIs in the build state"))
	}
	gd := &packerbuilderdata.GeneratedData{State: state}
	if len(c.SSMParameters) > 0 {
		ids, _ := amis.snapshot()
		ui.Say("Publishing the AMIs to SSM Parameter Store...")
		// Every parameter is written before any validation is waited for:
		// Parameter Store validates them at the same time.
		for _, p := range c.SSMParameters {
			w := &ssmWrite{SSMParameter: p, ami: ids[p.Region]}
			if w.ami == "" {
				return halt(state, fmt.Errorf("ssm_parameter %q: the build has no AMI in %s", p.Name, p.Region))
			}
			if err := s.write(ctx, state, w); err != nil {
				return halt(state, err)
			}
		}
		ui.Say("Waiting for Parameter Store to validate the versions written...")
		for _, w := range s.writes {
			if err := waitForParameter(ctx, state, w.Region, w.Name, w.version, w.ami); err != nil {
				return halt(state, fmt.Errorf("ssm_parameter %q in %s: %w", w.Name, w.Region, err))
			}
		}
		for _, w := range s.writes {
			if err := w.label(ctx, state); err != nil {
				return halt(state, err)
			}
		}
		// A cancel that came while the last call was answered still
		// undoes the writes: the build is not done yet.
		if err := ctx.Err(); err != nil {
			return halt(state, fmt.Errorf("publishing SSM parameters: %w", err))
		}
	}
	var published []PublishedParameter
	for _, w := range s.writes {
		published = append(published, PublishedParameter{Region: w.Region, Name: w.Name, Version: w.version, AMI: w.ami})
	}
	state.Put(stateSSMParameters, published)
	gd.Put("SSMParameters", formatParameters(published))
	amis.markDone()
	return multistep.ActionContinue
}

// write reads what the parameter holds, then writes the AMI id to it:
// creating it with its tags, or overwriting it. It retries while
// Parameter Store refuses because another update of the parameter is
// still being validated (or a deleted one's name is not free yet), up to
// ssm_parameter_timeout, and records the write as soon as it may have
// happened.
func (s *stepPublishSSMParameters) write(ctx context.Context, state multistep.StateBag, w *ssmWrite) error {
	c, cl, ui := from(state)
	api := cl.SSM(w.Region)
	if err := w.readBefore(ctx, api); err != nil {
		return err
	}
	deadline := time.Now().Add(c.SSMParameterTimeout)
	recorded := false
	for {
		in := &ssm.PutParameterInput{
			Name: aws.String(w.Name), Value: aws.String(w.ami), Type: ssmtypes.ParameterTypeString,
			DataType: aws.String(ssmImageDataType), Tier: ssmtypes.ParameterTierIntelligentTiering,
		}
		if w.Description != "" {
			in.Description = aws.String(w.Description)
		}
		if w.existed {
			in.Overwrite = aws.Bool(true)
		} else {
			in.Tags = ssmTags(w.Tags)
		}
		w.putAt = time.Now()
		// One attempt at a time, so that each failure says whether the
		// write may have happened.
		out, err := api.PutParameter(ctx, in, func(o *ssm.Options) { o.Retryer = aws.NopRetryer{} })
		if err == nil || mayHaveHappened(err) {
			if !recorded {
				s.writes = append(s.writes, w)
				recorded = true
			}
		}
		if err == nil {
			w.version = out.Version
			was := "created"
			if w.existed {
				was = fmt.Sprintf("was version %d, %s", w.prevVersion, w.prevValue)
			}
			ui.Message(fmt.Sprintf("SSM parameter %s in %s: version %d = %s (%s)", w.Name, w.Region, w.version, w.ami, was))
			return nil
		}
		code := apiCode(err)
		if code == "ParameterAlreadyExists" && !w.existed {
			// Created since it was read, perhaps by this build's own
			// write whose answer was lost.
			cur, gerr := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(w.Name)})
			if gerr == nil && recorded && aws.ToString(cur.Parameter.Value) == w.ami {
				w.version = cur.Parameter.Version
				ui.Message(fmt.Sprintf("SSM parameter %s in %s: version %d = %s (created)", w.Name, w.Region, w.version, w.ami))
				return nil
			}
			if rerr := w.readBefore(ctx, api); rerr != nil {
				return rerr
			}
			if !time.Now().Before(deadline) {
				return fmt.Errorf("writing %s to SSM parameter %q in %s: %w", w.ami, w.Name, w.Region, err)
			}
			continue
		}
		retry := code == "TooManyUpdates" || isThrottle(code) || mayHaveHappened(err)
		if !retry || ctx.Err() != nil || !time.Now().Before(deadline) {
			return fmt.Errorf("writing %s to SSM parameter %q in %s: %w", w.ami, w.Name, w.Region, err)
		}
		if !sleepCtx(ctx, c.PollInterval) {
			return fmt.Errorf("writing %s to SSM parameter %q in %s: %w", w.ami, w.Name, w.Region, ctx.Err())
		}
	}
}

// readBefore records what the parameter holds before the build writes
// it: its latest version and value and, when the build labels it, where
// those labels are.
func (w *ssmWrite) readBefore(ctx context.Context, api *ssm.Client) error {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(w.Name)})
	switch {
	case apiCode(err) == "ParameterNotFound":
		w.existed = false
		return nil
	case err != nil:
		return fmt.Errorf("reading SSM parameter %q in %s: %w", w.Name, w.Region, err)
	}
	w.existed, w.prevVersion, w.prevValue = true, out.Parameter.Version, aws.ToString(out.Parameter.Value)
	w.labelsWere = map[string]int64{}
	if len(w.Labels) == 0 {
		return nil
	}
	pages := ssm.NewGetParameterHistoryPaginator(api, &ssm.GetParameterHistoryInput{Name: aws.String(w.Name), MaxResults: aws.Int32(50)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("reading the labels of SSM parameter %q in %s: %w", w.Name, w.Region, err)
		}
		for _, v := range page.Parameters {
			for _, l := range v.Labels {
				if contains(w.Labels, l) {
					w.labelsWere[l] = v.Version
				}
			}
		}
	}
	return nil
}

// label attaches the block's labels to the version written, moving them
// from older versions.
func (w *ssmWrite) label(ctx context.Context, state multistep.StateBag) error {
	if len(w.Labels) == 0 {
		return nil
	}
	_, cl, ui := from(state)
	w.labelled = true
	out, err := cl.SSM(w.Region).LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{
		Name: aws.String(w.Name), ParameterVersion: aws.Int64(w.version), Labels: w.Labels,
	})
	if err != nil {
		return fmt.Errorf("labelling version %d of SSM parameter %q in %s: %w", w.version, w.Name, w.Region, err)
	}
	if len(out.InvalidLabels) > 0 {
		return fmt.Errorf("labelling version %d of SSM parameter %q in %s: Parameter Store refused the labels %s", w.version, w.Name, w.Region, strings.Join(out.InvalidLabels, ", "))
	}
	ui.Message(fmt.Sprintf("SSM parameter %s in %s: version %d labelled %s", w.Name, w.Region, w.version, strings.Join(w.Labels, ", ")))
	return nil
}

// waitForParameter waits until Parameter Store answers version of name
// with value: it validates aws:ec2:image values after PutParameter has
// answered, and until then the version does not exist. A value that
// fails validation is dropped without a word, so the wait ends at
// ssm_parameter_timeout.
func waitForParameter(ctx context.Context, state multistep.StateBag, region, name string, version int64, value string) error {
	c, cl, _ := from(state)
	api := cl.SSM(region)
	ref := fmt.Sprintf("%s:%d", name, version)
	err := waitFor(ctx, fmt.Sprintf("Parameter Store to validate version %d of SSM parameter %q in %s (%s)", version, name, region, value),
		"ssm_parameter_timeout", c.SSMParameterTimeout, c.PollInterval,
		func(ctx context.Context) (bool, string, error) {
			out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(ref)})
			switch code := apiCode(err); {
			case code == "ParameterNotFound" || code == "ParameterVersionNotFound":
				return false, "not readable", nil
			case err != nil:
				return false, "", err
			}
			if got := aws.ToString(out.Parameter.Value); got != value {
				return false, "", fmt.Errorf("version %d of SSM parameter %q in %s is %s, not %s: Parameter Store dropped the value written and another update took its number", version, name, region, got, value)
			}
			return true, "validated", nil
		})
	var we *waitError
	if errors.As(err, &we) {
		we.Status = "not readable; Parameter Store drops a value that fails validation without an error, and takes only an AMI that is available in the region"
	}
	return err
}

func (s *stepPublishSSMParameters) Cleanup(state multistep.StateBag) {
	amis, _ := state.Get(stateAMIs).(*amiSet)
	if len(s.writes) == 0 || !failed(state) || (amis != nil && amis.isDone()) {
		return
	}
	c, cl, ui := from(state)
	// Each write may wait for its own version's validation and then for
	// the validation of the value put back.
	ctx, cancel := cleanupContext(time.Duration(len(s.writes)+1)*2*c.SSMParameterTimeout + time.Minute)
	defer cancel()
	ui.Say("The build did not finish: putting back the SSM parameters it wrote...")
	for i := len(s.writes) - 1; i >= 0; i-- {
		w := s.writes[i]
		if err := w.undo(ctx, state, cl.SSM(w.Region)); err != nil {
			ui.Error(fmt.Sprintf("putting back SSM parameter %q in %s: %v", w.Name, w.Region, err))
		}
	}
	s.writes = nil
}

func (w *ssmWrite) undo(ctx context.Context, state multistep.StateBag, api *ssm.Client) error {
	if !w.existed {
		return w.remove(ctx, state, api)
	}
	var errs []error
	if w.labelled {
		errs = append(errs, w.moveLabelsBack(ctx, state, api))
	}
	errs = append(errs, w.restore(ctx, state, api))
	return errors.Join(errs...)
}

// remove deletes a parameter the build created. Until Parameter Store has
// validated the version written there is nothing to delete, and the
// parameter would appear afterwards: remove waits for it, up to
// ssm_parameter_timeout after the write.
func (w *ssmWrite) remove(ctx context.Context, state multistep.StateBag, api *ssm.Client) error {
	c, _, ui := from(state)
	deadline := w.putAt.Add(c.SSMParameterTimeout)
	for {
		out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(w.Name)})
		switch {
		case apiCode(err) == "ParameterNotFound":
			if !time.Now().Before(deadline) {
				return fmt.Errorf("the build created it, but it was not readable %s after the write: Parameter Store dropped the value, or the write never arrived, or it is still being validated; if it appears with %s, delete it", c.SSMParameterTimeout, w.ami)
			}
			if !sleepCtx(ctx, c.PollInterval) {
				return fmt.Errorf("waiting for it to be readable, to delete it: %w", ctx.Err())
			}
			continue
		case err != nil:
			return fmt.Errorf("reading it: %w", err)
		}
		p := out.Parameter
		if aws.ToString(p.Value) != w.ami || (w.version != 0 && p.Version != w.version) {
			return fmt.Errorf("it is now version %d, %s, which this build did not write: left as it is", p.Version, aws.ToString(p.Value))
		}
		ui.Message(fmt.Sprintf("Deleting SSM parameter %s in %s, which the build created", w.Name, w.Region))
		if _, err := api.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(w.Name)}); err != nil && apiCode(err) != "ParameterNotFound" {
			return fmt.Errorf("deleting it: %w", err)
		}
		return nil
	}
}

// restore puts the parameter's previous value back as a new version, on
// top of the build's version, and waits for it to be validated. While the
// build's version is still being validated, Parameter Store refuses
// another update; restore waits for that, up to ssm_parameter_timeout
// after the write. When the build's version was dropped or never
// arrived, the value put back is the value the parameter has: one more
// version of it.
func (w *ssmWrite) restore(ctx context.Context, state multistep.StateBag, api *ssm.Client) error {
	c, _, ui := from(state)
	deadline := w.putAt.Add(c.SSMParameterTimeout)
	for {
		out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(w.Name)})
		if apiCode(err) == "ParameterNotFound" {
			return errors.New("it no longer exists (someone deleted it): not created again")
		}
		if err != nil {
			return fmt.Errorf("reading it: %w", err)
		}
		cur := out.Parameter
		if cur.Version > w.prevVersion && aws.ToString(cur.Value) != w.ami {
			return fmt.Errorf("it is now version %d, %s, which this build did not write: left as it is", cur.Version, aws.ToString(cur.Value))
		}
		put, err := api.PutParameter(ctx, &ssm.PutParameterInput{
			Name: aws.String(w.Name), Value: aws.String(w.prevValue), Type: ssmtypes.ParameterTypeString,
			DataType: aws.String(ssmImageDataType), Tier: ssmtypes.ParameterTierIntelligentTiering, Overwrite: aws.Bool(true),
		})
		if apiCode(err) == "TooManyUpdates" && time.Now().Before(deadline) {
			// The build's version is still being validated.
			if !sleepCtx(ctx, c.PollInterval) {
				return fmt.Errorf("putting back %s: %w", w.prevValue, ctx.Err())
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("putting back %s (version %d): %w", w.prevValue, w.prevVersion, err)
		}
		ui.Message(fmt.Sprintf("SSM parameter %s in %s: version %d puts back %s (version %d)", w.Name, w.Region, put.Version, w.prevValue, w.prevVersion))
		if err := waitForParameter(ctx, state, w.Region, w.Name, put.Version, w.prevValue); err != nil {
			return fmt.Errorf("%w; until it is, the parameter names %s, which this cleanup deregisters", err, w.ami)
		}
		return nil
	}
}

// moveLabelsBack moves each label the build attached back to the version
// it was on, and removes those that were on none.
func (w *ssmWrite) moveLabelsBack(ctx context.Context, state multistep.StateBag, api *ssm.Client) error {
	_, _, ui := from(state)
	back := map[int64][]string{}
	var drop []string
	for _, l := range w.Labels {
		if v, ok := w.labelsWere[l]; ok {
			back[v] = append(back[v], l)
		} else {
			drop = append(drop, l)
		}
	}
	versions := make([]int64, 0, len(back))
	for v := range back {
		versions = append(versions, v)
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	var errs []error
	for _, v := range versions {
		ui.Message(fmt.Sprintf("SSM parameter %s in %s: moving %s back to version %d", w.Name, w.Region, strings.Join(back[v], ", "), v))
		if _, err := api.LabelParameterVersion(ctx, &ssm.LabelParameterVersionInput{Name: aws.String(w.Name), ParameterVersion: aws.Int64(v), Labels: back[v]}); err != nil {
			errs = append(errs, fmt.Errorf("moving labels %s back to version %d: %w", strings.Join(back[v], ", "), v, err))
		}
	}
	if len(drop) > 0 && w.version != 0 {
		ui.Message(fmt.Sprintf("SSM parameter %s in %s: removing %s from version %d", w.Name, w.Region, strings.Join(drop, ", "), w.version))
		if _, err := api.UnlabelParameterVersion(ctx, &ssm.UnlabelParameterVersionInput{Name: aws.String(w.Name), ParameterVersion: aws.Int64(w.version), Labels: drop}); err != nil {
			errs = append(errs, fmt.Errorf("removing labels %s from version %d: %w", strings.Join(drop, ", "), w.version, err))
		}
	}
	return errors.Join(errs...)
}

// mayHaveHappened reports whether a failed call may nevertheless have
// been carried out: AWS did not answer (the connection failed, the
// context ended) or answered with a server error.
func mayHaveHappened(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() >= 500
}

func isThrottle(code string) bool {
	switch code {
	case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded":
		return true
	}
	return false
}

// sleepCtx waits for d, or less when ctx ends; it reports whether ctx is
// still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func ssmTags(m map[string]string) []ssmtypes.Tag {
	var out []ssmtypes.Tag
	for _, k := range sortedKeys(m) {
		out = append(out, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// formatParameters is the SSMParameters generated data:
// "REGION:NAME:VERSION" per parameter, comma-joined, sorted by region and
// name. NAME:VERSION is how resolve:ssm: pins that version.
func formatParameters(ps []PublishedParameter) string {
	parts := make([]string, 0, len(ps))
	for _, p := range sortedParameters(ps) {
		parts = append(parts, fmt.Sprintf("%s:%s:%d", p.Region, p.Name, p.Version))
	}
	return strings.Join(parts, ",")
}

func sortedParameters(ps []PublishedParameter) []PublishedParameter {
	out := append([]PublishedParameter(nil), ps...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Region != out[j].Region {
			return out[i].Region < out[j].Region
		}
		return out[i].Name < out[j].Name
	})
	return out
}
