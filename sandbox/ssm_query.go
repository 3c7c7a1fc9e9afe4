package sandbox

import (
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Parameter Store listings (GetParametersByPath, DescribeParameters,
// GetParameterHistory), labels and tags.

func init() {
	register("ssm", "GetParametersByPath", ssmGetParametersByPath)
	register("ssm", "DescribeParameters", ssmDescribeParameters)
	register("ssm", "GetParameterHistory", ssmGetParameterHistory)
	register("ssm", "LabelParameterVersion", ssmLabelParameterVersion)
	register("ssm", "UnlabelParameterVersion", ssmUnlabelParameterVersion)
	register("ssm", "AddTagsToResource", ssmAddTagsToResource)
	register("ssm", "RemoveTagsFromResource", ssmRemoveTagsFromResource)
	register("ssm", "ListTagsForResource", ssmListTagsForResource)
}

// ssmPage pages a listing with NextToken and MaxResults (1 to max,
// default def).
func ssmPage[T any](items []T, token *string, maxResults *int, max, def int) ([]T, string, *APIError) {
	n := def
	if maxResults != nil {
		n = *maxResults
		if n < 1 || n > max {
			return nil, "", ssmValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to %d and greater than or equal to 1", n, max)
		}
	}
	tok := ""
	if token != nil {
		tok = *token
	}
	out, next, err := page(items, tok, n)
	if err != nil {
		return nil, "", ssmErr("InvalidNextToken", "The specified token isn't valid.")
	}
	return out, next, nil
}

// withNext adds NextToken to a listing when there is more.
func withNext(out map[string]any, next string) map[string]any {
	if next != "" {
		out["NextToken"] = next
	}
	return out
}

// sortedParameters lists the parameters that exist, by name.
func (r *Region) sortedParameters() []*SSMParameter {
	var out []*SSMParameter
	for _, p := range r.SSMParameters {
		if len(p.Versions) > 0 {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return ssmPath(out[i].Name) < ssmPath(out[j].Name) })
	return out
}

// under reports whether a parameter lies under path ("/a/b"; "" for the
// root): directly, or at any depth when recursive.
func under(p *SSMParameter, path string, recursive bool) bool {
	full := ssmPath(p.Name)
	if !strings.HasPrefix(full, path+"/") {
		return false
	}
	return recursive || !strings.Contains(full[len(path)+1:], "/")
}

// ssmFilter is a ParameterStringFilter.
type ssmFilter struct {
	Key    string
	Option *string
	Values []string
}

var ssmFilterKey = regexp.MustCompile(`^(tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType)$`)

// checkFilters checks filters for an action: the keys it takes, each
// key's options (the first is the default) and values.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ParameterStringFilter.html
func checkFilters(filters []ssmFilter, byPath bool) ([]ssmFilter, *APIError) {
	var out []ssmFilter
	for _, f := range filters {
		if len(f.Key) > 132 || !ssmFilterKey.MatchString(f.Key) {
			return nil, ssmValidation("1 validation error detected: Value '%s' at 'parameterFilters.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType", f.Key)
		}
		tag := strings.HasPrefix(f.Key, "tag:")
		var options []string
		switch {
		case byPath && (f.Key == "Type" || f.Key == "KeyId"):
			options = []string{"Equals", "BeginsWith"}
		case byPath && f.Key == "Label":
			options = []string{"Equals"}
		case byPath:
			return nil, ssmErr("InvalidFilterKey", "The following filter key isn't valid for GetParametersByPath: %s. Valid keys are Type, KeyId and Label.", f.Key)
		case f.Key == "Label":
			return nil, ssmErr("InvalidFilterKey", "The filter key Label isn't valid for DescribeParameters.")
		case f.Key == "Path":
			options = []string{"OneLevel", "Recursive"}
		case f.Key == "Name":
			options = []string{"Equals", "BeginsWith", "Contains"}
		default:
			options = []string{"Equals", "BeginsWith"}
		}
		if f.Option == nil {
			f.Option = &options[0]
		} else if !contains(options, *f.Option) {
			return nil, ssmErr("InvalidFilterOption", "The specified filter option isn't valid. Valid options are %s for the key %s.", strings.Join(options, " and "), f.Key)
		}
		if len(f.Values) > 50 || len(f.Values) == 0 && !tag {
			return nil, ssmErr("InvalidFilterValue", "The filter value isn't valid: the key %s needs 1 to 50 values.", f.Key)
		}
		for _, v := range f.Values {
			bad := len(v) < 1 || len(v) > 1024
			switch f.Key {
			case "Type":
				bad = bad || !contains([]string{"String", "StringList", "SecureString"}, v)
			case "Tier":
				bad = bad || !contains([]string{"Standard", "Advanced", "Intelligent-Tiering"}, v)
			case "DataType":
				bad = bad || !contains([]string{"text", ssmImageDataType, "aws:ssm:integration"}, v)
			case "Path":
				bad = bad || !strings.HasPrefix(v, "/")
			}
			if bad {
				return nil, ssmErr("InvalidFilterValue", "The filter value %s isn't valid for the key %s. Verify the value and try again.", v, f.Key)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func matchString(option, have, want string) bool {
	switch option {
	case "BeginsWith":
		return strings.HasPrefix(have, want)
	case "Contains":
		return strings.Contains(have, want)
	}
	return have == want
}

// matches reports whether version v of p passes every filter (any of a
// filter's values will do).
func (f ssmFilter) matches(p *SSMParameter, v *SSMParameterVersion) bool {
	if strings.HasPrefix(f.Key, "tag:") {
		val, ok := p.Tags[strings.TrimPrefix(f.Key, "tag:")]
		if !ok {
			return false
		}
		if len(f.Values) == 0 {
			return true
		}
		for _, want := range f.Values {
			if matchString(*f.Option, val, want) {
				return true
			}
		}
		return false
	}
	for _, want := range f.Values {
		switch f.Key {
		case "Name":
			// "name" and "/name" are one parameter.
			if matchString(*f.Option, p.Name, want) || matchString(*f.Option, ssmPath(p.Name), want) {
				return true
			}
		case "Path":
			if under(p, strings.TrimSuffix(want, "/"), *f.Option == "Recursive") {
				return true
			}
		case "Label":
			if contains(v.Labels, want) {
				return true
			}
		default:
			have := map[string]string{"Type": v.Type, "KeyId": v.KeyID, "Tier": v.Tier, "DataType": v.DataType}[f.Key]
			if have != "" && matchString(*f.Option, have, want) {
				return true
			}
		}
	}
	return false
}

// labelled is the version of p that carries one of the Label filter's
// labels, or the latest version when there is no Label filter.
func labelled(p *SSMParameter, filters []ssmFilter) *SSMParameterVersion {
	for _, f := range filters {
		if f.Key != "Label" {
			continue
		}
		for _, v := range p.Versions {
			if f.matches(p, v) {
				return v
			}
		}
		return nil
	}
	return p.latest()
}

// GetParametersByPath lists the parameters under a path. As AWS says, a
// page holds between zero and MaxResults parameters: the sandbox pages
// over the parameters under the path and then applies the filters, so a
// page can come back short, or empty with a NextToken.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
func ssmGetParametersByPath(c *call) (any, *APIError) {
	var in struct {
		Path             *string
		Recursive        bool
		ParameterFilters []ssmFilter
		WithDecryption   bool
		MaxResults       *int
		NextToken        *string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.Path == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'path' failed to satisfy constraint: Member must not be null")
	}
	path := strings.TrimSpace(*in.Path)
	if !strings.HasPrefix(path, "/") {
		return nil, ssmValidation("The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".")
	}
	path = strings.TrimSuffix(path, "/")
	// A path may lie under a reserved prefix (AWS's public parameters are
	// under /aws/service; the sandbox has none, so it lists nothing).
	if segs := strings.Split(path, "/")[1:]; path != "" && (!ssmNameChars.MatchString(path) || contains(segs, "")) {
		return nil, ssmValidation("The parameter path %s is not valid. Paths can include only the following symbols and letters: a-zA-Z0-9_.-/", *in.Path)
	} else if len(segs) > 15 {
		return nil, ssmErr("HierarchyLevelLimitExceededException", "A hierarchy can have a maximum of 15 levels.")
	}
	filters, err := checkFilters(in.ParameterFilters, true)
	if err != nil {
		return nil, err
	}
	var cands []*SSMParameter
	for _, p := range c.r.sortedParameters() {
		if under(p, path, in.Recursive) {
			cands = append(cands, p)
		}
	}
	pg, next, err := ssmPage(cands, in.NextToken, in.MaxResults, 10, 10)
	if err != nil {
		return nil, err
	}
	params := []ssmParameterOut{}
	for _, p := range pg {
		v := labelled(p, filters)
		if v == nil || !matchAll(filters, p, v) {
			continue
		}
		out, err := c.parameterOut(p, v, "", in.WithDecryption)
		if err != nil {
			return nil, err
		}
		params = append(params, out)
	}
	return withNext(map[string]any{"Parameters": params}, next), nil
}

func matchAll(filters []ssmFilter, p *SSMParameter, v *SSMParameterVersion) bool {
	for _, f := range filters {
		if !f.matches(p, v) {
			return false
		}
	}
	return true
}

// ssmMetadata is a ParameterMetadata of DescribeParameters.
type ssmMetadata struct {
	Name             string
	ARN              string
	Type             string
	KeyId            string `json:",omitempty"`
	LastModifiedDate float64
	LastModifiedUser string
	Description      string `json:",omitempty"`
	AllowedPattern   string `json:",omitempty"`
	Version          int64
	Tier             string
	Policies         []any
	DataType         string
}

// DescribeParameters lists parameters' metadata, paged like
// GetParametersByPath: filters apply within a page, which may be empty.
// The deprecated Filters (Name, Type, KeyId; equality) are taken, but not
// with ParameterFilters in the same request.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DescribeParameters.html
func ssmDescribeParameters(c *call) (any, *APIError) {
	var in struct {
		Filters []struct {
			Key    string
			Values []string
		}
		ParameterFilters []ssmFilter
		MaxResults       *int
		NextToken        *string
		Shared           bool
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if len(in.Filters) > 0 && len(in.ParameterFilters) > 0 {
		return nil, ssmValidation("You can use either Filters or ParameterFilters in a single request, but not both.")
	}
	raw := in.ParameterFilters
	for _, f := range in.Filters {
		if !contains([]string{"Name", "Type", "KeyId"}, f.Key) {
			return nil, ssmValidation("1 validation error detected: Value '%s' at 'filters.member.key' failed to satisfy constraint: Member must satisfy enum value set: [Name, Type, KeyId]", f.Key)
		}
		raw = append(raw, ssmFilter{Key: f.Key, Values: f.Values})
	}
	filters, err := checkFilters(raw, false)
	if err != nil {
		return nil, err
	}
	var all []*SSMParameter
	if !in.Shared { // nothing is shared with the sandbox's one account
		all = c.r.sortedParameters()
	}
	pg, next, err := ssmPage(all, in.NextToken, in.MaxResults, 50, 50)
	if err != nil {
		return nil, err
	}
	list := []ssmMetadata{}
	for _, p := range pg {
		v := p.latest()
		if !matchAll(filters, p, v) {
			continue
		}
		list = append(list, ssmMetadata{Name: p.Name, ARN: c.r.parameterARN(p.Name), Type: v.Type, KeyId: v.KeyID,
			LastModifiedDate: epoch(v.Modified), LastModifiedUser: v.User, Description: v.Description,
			AllowedPattern: v.AllowedPattern, Version: v.Version, Tier: v.Tier, Policies: []any{}, DataType: v.DataType})
	}
	return withNext(map[string]any{"Parameters": list}, next), nil
}

// GetParameterHistory lists every retained version, oldest first, with
// its labels; a version still being validated is not in it.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameterHistory.html
func ssmGetParameterHistory(c *call) (any, *APIError) {
	var in struct {
		Name           *string
		WithDecryption bool
		MaxResults     *int
		NextToken      *string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.Name == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	p, _, _, err := c.r.lookupParameter(*in.Name, false)
	if err != nil {
		return nil, err
	}
	pg, next, err := ssmPage(p.Versions, in.NextToken, in.MaxResults, 50, 50)
	if err != nil {
		return nil, err
	}
	list := []map[string]any{}
	for _, v := range pg {
		val, err := c.value(p, v, in.WithDecryption)
		if err != nil {
			return nil, err
		}
		h := map[string]any{"Name": p.Name, "Type": v.Type, "LastModifiedDate": epoch(v.Modified), "LastModifiedUser": v.User,
			"Value": val, "Version": v.Version, "Labels": append([]string{}, v.Labels...), "Tier": v.Tier, "Policies": []any{}, "DataType": v.DataType}
		for k, s := range map[string]string{"KeyId": v.KeyID, "Description": v.Description, "AllowedPattern": v.AllowedPattern} {
			if s != "" {
				h[k] = s
			}
		}
		list = append(list, h)
	}
	return withNext(map[string]any{"Parameters": list}, next), nil
}

// labelParameter resolves the parameter and version a label request
// names: a name (no ARN, no selector) and a version, the latest if nil.
func (c *call) labelParameter(name *string, version *int64, labels []string) (*SSMParameter, *SSMParameterVersion, *APIError) {
	if name == nil {
		return nil, nil, ssmValidation("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
	}
	if len(labels) < 1 || len(labels) > 10 {
		return nil, nil, ssmValidation("1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1")
	}
	for _, l := range labels {
		if len(l) < 1 || len(l) > 100 {
			return nil, nil, ssmValidation("1 validation error detected: Value '%s' at 'labels' failed to satisfy constraint: Member must have length less than or equal to 100 and greater than or equal to 1", l)
		}
	}
	p, err := c.r.deletable(*name)
	if err != nil {
		return nil, nil, err
	}
	v := p.latest()
	if version != nil {
		if v, err = p.version(strconv.FormatInt(*version, 10)); err != nil {
			return nil, nil, err
		}
	}
	return p, v, nil
}

var labelChars = regexp.MustCompile(`^[a-zA-Z0-9._\-]+$`)

// validLabel applies the label rules: letters, numbers, periods, hyphens
// and underscores; not beginning with a number, "aws" or "ssm".
// https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-labels.html
func validLabel(l string) bool {
	low := strings.ToLower(l)
	return labelChars.MatchString(l) && !(l[0] >= '0' && l[0] <= '9') && !strings.HasPrefix(low, "aws") && !strings.HasPrefix(low, "ssm")
}

// LabelParameterVersion attaches labels to a version, moving a label that
// another version of the parameter has. Labels that break the rules are
// not attached and come back as InvalidLabels; a version can have 10
// labels at most.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_LabelParameterVersion.html
func ssmLabelParameterVersion(c *call) (any, *APIError) {
	var in struct {
		Name             *string
		ParameterVersion *int64
		Labels           []string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	p, v, err := c.labelParameter(in.Name, in.ParameterVersion, in.Labels)
	if err != nil {
		return nil, err
	}
	invalid := []string{}
	var add []string
	for _, l := range in.Labels {
		switch {
		case !validLabel(l):
			invalid = append(invalid, l)
		case !contains(v.Labels, l) && !contains(add, l):
			add = append(add, l)
		}
	}
	if len(v.Labels)+len(add) > 10 {
		return nil, ssmErr("ParameterVersionLabelLimitExceeded", "A parameter version can have a maximum of ten labels. Version %d of %s has %d.", v.Version, p.Name, len(v.Labels))
	}
	for _, l := range add {
		for _, o := range p.Versions {
			o.Labels = without(o.Labels, l)
		}
		v.Labels = append(v.Labels, l)
	}
	return map[string]any{"InvalidLabels": invalid, "ParameterVersion": v.Version}, nil
}

func without(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UnlabelParameterVersion.html
func ssmUnlabelParameterVersion(c *call) (any, *APIError) {
	var in struct {
		Name             *string
		ParameterVersion *int64
		Labels           []string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	if in.ParameterVersion == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'parameterVersion' failed to satisfy constraint: Member must not be null")
	}
	_, v, err := c.labelParameter(in.Name, in.ParameterVersion, in.Labels)
	if err != nil {
		return nil, err
	}
	removed, invalid := []string{}, []string{}
	for _, l := range in.Labels {
		if contains(v.Labels, l) {
			v.Labels = without(v.Labels, l)
			removed = append(removed, l)
		} else if !contains(removed, l) {
			invalid = append(invalid, l)
		}
	}
	return map[string]any{"RemovedLabels": removed, "InvalidLabels": invalid}, nil
}

// taggedParameter resolves ResourceType and ResourceId of the tagging
// actions: the sandbox tags parameters, named by name.
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html
func (c *call) taggedParameter(typ, id *string) (*SSMParameter, *APIError) {
	if typ == nil || id == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'resourceType' or 'resourceId' failed to satisfy constraint: Member must not be null")
	}
	switch *typ {
	case "Parameter":
	case "Document", "ManagedInstance", "MaintenanceWindow", "PatchBaseline", "OpsItem", "OpsMetadata", "Automation", "Association":
		return nil, ssmErr("InvalidResourceType", "The sandbox emulates tags of Parameter resources only, not %s.", *typ)
	default:
		return nil, ssmValidation("1 validation error detected: Value '%s' at 'resourceType' failed to satisfy constraint: Member must satisfy enum value set: [Document, ManagedInstance, MaintenanceWindow, Parameter, PatchBaseline, OpsItem, OpsMetadata, Automation, Association]", *typ)
	}
	p, err := c.r.deletable(*id)
	if err != nil {
		return nil, ssmErr("InvalidResourceId", "The resource ID isn't valid. Verify that you entered the correct ID and try again.")
	}
	return p, nil
}

func ssmAddTagsToResource(c *call) (any, *APIError) {
	var in struct {
		ResourceType, ResourceId *string
		Tags                     []ssmTag
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	p, err := c.taggedParameter(in.ResourceType, in.ResourceId)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, ssmValidation("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	tags, err := ssmTags(in.Tags)
	if err != nil {
		return nil, err
	}
	merged := p.Tags.Clone()
	for k, v := range tags {
		merged[k] = v
	}
	if len(merged) > ssmMaxTags {
		return nil, tooManyTags()
	}
	p.Tags = merged
	return struct{}{}, nil
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RemoveTagsFromResource.html
func ssmRemoveTagsFromResource(c *call) (any, *APIError) {
	var in struct {
		ResourceType, ResourceId *string
		TagKeys                  []string
	}
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	p, err := c.taggedParameter(in.ResourceType, in.ResourceId)
	if err != nil {
		return nil, err
	}
	if in.TagKeys == nil {
		return nil, ssmValidation("1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	for _, k := range in.TagKeys {
		delete(p.Tags, k)
	}
	return struct{}{}, nil
}

// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListTagsForResource.html
func ssmListTagsForResource(c *call) (any, *APIError) {
	var in struct{ ResourceType, ResourceId *string }
	if err := c.decode(&in); err != nil {
		return nil, err
	}
	p, err := c.taggedParameter(in.ResourceType, in.ResourceId)
	if err != nil {
		return nil, err
	}
	list := []map[string]string{}
	for _, k := range p.Tags.Keys() {
		list = append(list, map[string]string{"Key": k, "Value": p.Tags[k]})
	}
	return map[string]any{"TagList": list}, nil
}
