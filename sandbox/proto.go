package sandbox

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// APIError is an error in AWS's terms: the code clients switch on, the
// message people read and the HTTP status AWS uses for it.
type APIError struct {
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// errf builds a 400 client error, the status of nearly every AWS error.
func errf(code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

// notFound is the "<Thing>.NotFound" family EC2 uses for unknown ids.
func notFound(code, id string, what string) *APIError {
	return errf(code, "The %s '%s' does not exist", what, id)
}

// Params reads AWS query-protocol input: flat form keys such as
// "Filter.1.Value.2" or "AutoScalingGroupNames.member.1".
type Params struct {
	v      url.Values
	prefix string
}

func newParams(v url.Values) Params { return Params{v: v} }

// Get returns the value of key under this Params' prefix.
func (p Params) Get(key string) string { return p.v.Get(p.prefix + key) }

// Has reports whether key was sent.
func (p Params) Has(key string) bool { _, ok := p.v[p.prefix+key]; return ok }

// Int returns key as an int, def when absent, and an InvalidParameterValue
// error naming the key when it is not a number.
func (p Params) Int(key string, def int) (int, *APIError) {
	s := p.Get(key)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errf("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected an integer.", s, key)
	}
	return n, nil
}

// IntPtr is Int for optional numbers.
func (p Params) IntPtr(key string) (*int, *APIError) {
	if !p.Has(key) {
		return nil, nil
	}
	n, err := p.Int(key, 0)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// Bool returns key as a bool, def when absent.
func (p Params) Bool(key string, def bool) (bool, *APIError) {
	s := p.Get(key)
	if s == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errf("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected a boolean.", s, key)
	}
	return b, nil
}

// BoolPtr is Bool for optional flags.
func (p Params) BoolPtr(key string) (*bool, *APIError) {
	if !p.Has(key) {
		return nil, nil
	}
	b, err := p.Bool(key, false)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// Sub returns the Params under key (for structures: "Ebs." etc).
func (p Params) Sub(key string) Params { return Params{v: p.v, prefix: p.prefix + key + "."} }

// HasSub reports whether any key under key. was sent.
func (p Params) HasSub(key string) bool {
	pre := p.prefix + key + "."
	for k := range p.v {
		if strings.HasPrefix(k, pre) {
			return true
		}
	}
	return false
}

// indexes returns the sorted list indexes present under pre ("X.1", "X.2.Y").
func (p Params) indexes(pre string) []int {
	seen := map[int]bool{}
	for k := range p.v {
		if !strings.HasPrefix(k, pre) {
			continue
		}
		rest := k[len(pre):]
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			rest = rest[:i]
		}
		if n, err := strconv.Atoi(rest); err == nil {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// List returns the EC2-style list "Key.1", "Key.2", ...
func (p Params) List(key string) []string {
	pre := p.prefix + key + "."
	var out []string
	for _, n := range p.indexes(pre) {
		out = append(out, p.v.Get(pre+strconv.Itoa(n)))
	}
	return out
}

// Members returns the query-style list "Key.member.1", ...
func (p Params) Members(key string) []string { return p.List(key + ".member") }

// Structs returns the EC2-style list of structures "Key.1.Field", ...
func (p Params) Structs(key string) []Params {
	pre := p.prefix + key + "."
	var out []Params
	for _, n := range p.indexes(pre) {
		out = append(out, Params{v: p.v, prefix: pre + strconv.Itoa(n) + "."})
	}
	return out
}

// MemberStructs returns the query-style list "Key.member.1.Field", ...
func (p Params) MemberStructs(key string) []Params { return p.Structs(key + ".member") }

// X is a node of an XML response. Builders below keep handlers short.
type X struct {
	Name string
	Text string
	Kids []*X
	leaf bool
}

// E makes an element with children; nil children are skipped.
func E(name string, kids ...*X) *X {
	x := &X{Name: name}
	for _, k := range kids {
		if k != nil {
			x.Kids = append(x.Kids, k)
		}
	}
	return x
}

// T makes a text element, always written (also when empty).
func T(name, text string) *X { return &X{Name: name, Text: text, leaf: true} }

// Opt makes a text element only when text is not empty.
func Opt(name, text string) *X {
	if text == "" {
		return nil
	}
	return T(name, text)
}

// I makes an integer element.
func I(name string, n int) *X { return T(name, strconv.Itoa(n)) }

// IPtr makes an integer element when n is set.
func IPtr(name string, n *int) *X {
	if n == nil {
		return nil
	}
	return I(name, *n)
}

// B makes a boolean element.
func B(name string, b bool) *X { return T(name, strconv.FormatBool(b)) }

// BPtr makes a boolean element when b is set.
func BPtr(name string, b *bool) *X {
	if b == nil {
		return nil
	}
	return B(name, *b)
}

// Time makes an ISO 8601 timestamp element as AWS writes them.
func Time(name string, t time.Time) *X {
	if t.IsZero() {
		return nil
	}
	return T(name, t.UTC().Format("2006-01-02T15:04:05.000Z"))
}

// List wraps items in name, each item being an <item> (EC2) or <member>
// (query protocols) element built by the caller.
func List(name string, items []*X) *X {
	return &X{Name: name, Kids: items}
}

// Items turns values into <item>/<member> elements with f.
func Items[T any](item string, vals []T, f func(T) []*X) []*X {
	out := make([]*X, 0, len(vals))
	for _, v := range vals {
		out = append(out, E(item, f(v)...))
	}
	return out
}

// Strings turns strings into text items.
func Strings(item string, vals []string) []*X {
	out := make([]*X, 0, len(vals))
	for _, v := range vals {
		out = append(out, T(item, v))
	}
	return out
}

func (x *X) write(w io.Writer) {
	io.WriteString(w, "<"+x.Name+">")
	if x.leaf {
		xml.EscapeText(w, []byte(x.Text))
	}
	for _, k := range x.Kids {
		k.write(w)
	}
	io.WriteString(w, "</"+x.Name+">")
}

// Tags renders a tag set for EC2 (<tagSet><item><key>…) sorted by key.
func ec2TagSet(tags Tags) *X {
	if len(tags) == 0 {
		return nil
	}
	keys := tags.Keys()
	items := make([]*X, 0, len(keys))
	for _, k := range keys {
		items = append(items, E("item", T("key", k), T("value", tags[k])))
	}
	return List("tagSet", items)
}

// Tags is a resource's tag map.
type Tags map[string]string

// Keys returns the tag keys sorted.
func (t Tags) Keys() []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Clone copies the tags.
func (t Tags) Clone() Tags {
	out := make(Tags, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}
