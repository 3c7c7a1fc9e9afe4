package sandbox

import (
	"encoding/base64"
	"path"
	"strconv"
	"strings"
)

// Filter is one EC2 Filter.N with its values.
type Filter struct {
	Name   string
	Values []string
}

// parseFilters reads Filter.N.Name / Filter.N.Value.M.
func parseFilters(p Params) ([]Filter, *APIError) {
	var out []Filter
	for _, f := range p.Structs("Filter") {
		name := f.Get("Name")
		if name == "" {
			return nil, errf("InvalidParameterValue", "The filter name must not be empty")
		}
		out = append(out, Filter{Name: name, Values: f.List("Value")})
	}
	return out, nil
}

// matchWildcard matches AWS filter values: * any run, ? one character.
func matchWildcard(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?[") {
		return pattern == s
	}
	// AWS has no character classes; escape '[' so path.Match treats it literally.
	pattern = strings.ReplaceAll(pattern, "[", "\\[")
	ok, err := path.Match(pattern, s)
	if err != nil {
		return false
	}
	if ok {
		return true
	}
	// path.Match does not let * cross '/'; AWS does.
	if strings.Contains(s, "/") {
		return matchWildcard(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00"))
	}
	return false
}

// FilterFields gives a resource's values for a filter name; known is false
// for a name the resource type does not support.
type FilterFields func(name string) (values []string, known bool)

// matchFilters applies EC2 filter semantics: values of one filter are ORed,
// filters are ANDed; tag:K, tag-key and tag-value work on every resource.
func matchFilters(filters []Filter, tags Tags, fields FilterFields) (bool, *APIError) {
	for _, f := range filters {
		var vals []string
		switch {
		case strings.HasPrefix(f.Name, "tag:"):
			if v, ok := tags[f.Name[4:]]; ok {
				vals = []string{v}
			}
		case f.Name == "tag-key":
			vals = tags.Keys()
		case f.Name == "tag-value":
			for _, k := range tags.Keys() {
				vals = append(vals, tags[k])
			}
		default:
			v, known := fields(f.Name)
			if !known {
				return false, errf("InvalidParameterValue", "The filter '%s' is invalid", f.Name)
			}
			vals = v
		}
		if !anyMatch(f.Values, vals) {
			return false, nil
		}
	}
	return true, nil
}

func anyMatch(patterns, vals []string) bool {
	for _, p := range patterns {
		for _, v := range vals {
			if matchWildcard(p, v) {
				return true
			}
		}
	}
	return false
}

// page cuts items to one page given MaxResults-style limit and an opaque
// NextToken, returning the next token ("" on the last page).
func page[T any](items []T, token string, max int) ([]T, string, *APIError) {
	start := 0
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		n, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "offset:"))
		if err != nil || err2 != nil || n < 0 || n > len(items) {
			return nil, "", errf("InvalidParameterValue", "Invalid value '%s' for NextToken", token)
		}
		start = n
	}
	if max <= 0 || start+max >= len(items) {
		return items[start:], "", nil
	}
	next := base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.Itoa(start+max)))
	return items[start : start+max], next, nil
}
