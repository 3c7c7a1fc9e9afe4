package sandbox

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Target group stickiness in a weighted forward: with
// TargetGroupStickinessConfig enabled, the load balancer answers with an
// AWSALBTG cookie (and AWSALBTGCORS) naming the target group it chose,
// and routes a request that carries a valid one to that target group for
// DurationSeconds, whatever the weights say by then.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetGroupStickinessConfig.html
// https://docs.aws.amazon.com/prescriptive-guidance/latest/load-balancer-stickiness/target-group-stickiness.html
//
// Where the documentation leaves room, the stricter reading: a cookie
// holds for any target group still in the forward, also at weight 0, and
// a target group with no target left answers 503 rather than sending the
// client elsewhere. The duration runs from the response that first chose
// the target group; later responses carry the same expiry.

const (
	stickyCookie     = "AWSALBTG"
	stickyCookieCORS = "AWSALBTGCORS"
)

// stickyKey signs the sandbox's AWSALBTG cookies, which AWS encrypts: a
// client cannot choose its target group by writing the cookie.
var stickyKey = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

// stickyTarget is what a valid AWSALBTG cookie says.
type stickyTarget struct {
	rule, targetGroup string
	until             time.Time
}

func (st stickyTarget) encode() string {
	payload := st.rule + "|" + st.targetGroup + "|" + strconv.FormatInt(st.until.UnixNano(), 10)
	mac := hmac.New(sha256.New, stickyKey)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func decodeSticky(v string) (stickyTarget, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return stickyTarget{}, false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return stickyTarget{}, false
	}
	mac := hmac.New(sha256.New, stickyKey)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return stickyTarget{}, false
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 {
		return stickyTarget{}, false
	}
	n, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return stickyTarget{}, false
	}
	return stickyTarget{rule: parts[0], targetGroup: parts[1], until: time.Unix(0, n)}, true
}

// pickForward chooses the target group of a forward action of rule for
// req: the one a valid AWSALBTG cookie names when the action is sticky,
// else one drawn by weight; cookies are what the response sets.
func (r *Region) pickForward(rule string, a Action, req *http.Request, pick func([]WeightedTargetGroup) *TargetGroup) (*TargetGroup, []*http.Cookie) {
	now := r.w.now()
	if !a.Stickiness {
		return pick(a.Forward), nil
	}
	var st stickyTarget
	found := false
	if c, err := req.Cookie(stickyCookie); err == nil {
		if v, ok := decodeSticky(c.Value); ok && v.rule == rule && now.Before(v.until) {
			for _, f := range a.Forward {
				if f.ARN == v.targetGroup {
					st, found = v, true
				}
			}
		}
	}
	if !found {
		tg := pick(a.Forward)
		if tg == nil {
			return nil, nil
		}
		st = stickyTarget{rule: rule, targetGroup: tg.ARN, until: r.w.afterSeconds(a.StickinessSecs)}
	}
	maxAge := int(math.Ceil(st.until.Sub(now).Seconds()))
	v := st.encode()
	cookies := []*http.Cookie{
		{Name: stickyCookie, Value: v, Path: "/", Expires: st.until, MaxAge: max(maxAge, 1)},
		{Name: stickyCookieCORS, Value: v, Path: "/", Expires: st.until, MaxAge: max(maxAge, 1), SameSite: http.SameSiteNoneMode, Secure: true},
	}
	return r.TargetGroups[st.targetGroup], cookies
}

// Route is where a load balancer listener sends a request, as the linux
// runtime's proxy would: a target of a target group, or an answer of its
// own. It lets tests and scripts on any runtime see routing, stickiness
// included.
type Route struct {
	// TargetGroup is the forward's target group ARN; Target the address
	// (ip:port) of the target it chose, "" when the group has none to
	// offer (Status is then 503).
	TargetGroup string `json:"target_group_arn,omitempty"`
	Target      string `json:"target,omitempty"`
	// Status is the load balancer's own answer (fixed response,
	// redirect, 401, 503); 0 when the request goes to Target.
	Status   int    `json:"status,omitempty"`
	Location string `json:"location,omitempty"`
	// Cookies are the Set-Cookie headers of the response.
	Cookies   []*http.Cookie `json:"-"`
	SetCookie []string       `json:"set_cookie,omitempty"`
}

// routeRR turns the round robin of routes asked for through Route.
var routeRR atomic.Uint64

// Route routes req through listener listenerARN of region.
func (s *Sandbox) Route(region, listenerARN string, req *http.Request) Route {
	w := s.world
	w.mu.Lock()
	defer w.mu.Unlock()
	a := lbUnavailable
	if r := w.regions[regionKey{AccountID, region}]; r != nil {
		a = r.routeRequest(listenerARN, req, &routeRR)
	}
	rt := Route{TargetGroup: a.targetGroup, Target: a.target, Location: a.location, Cookies: a.cookies}
	if a.target == "" {
		rt.Status = a.status
	}
	for _, c := range a.cookies {
		rt.SetCookie = append(rt.SetCookie, c.String())
	}
	return rt
}

// routeHook serves POST /_sandbox/route: {"region", "listener_arn",
// "method", "path", "host", "headers": {"Cookie": "…"}} → Route.
func (s *Sandbox) routeHook(req *http.Request) (Route, error) {
	var in struct {
		Region      string            `json:"region"`
		ListenerARN string            `json:"listener_arn"`
		Method      string            `json:"method"`
		Path        string            `json:"path"`
		Host        string            `json:"host"`
		Headers     map[string]string `json:"headers"`
	}
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
		return Route{}, fmt.Errorf("decoding route request: %w", err)
	}
	if in.Region == "" || in.ListenerARN == "" {
		return Route{}, fmt.Errorf("a route request needs region and listener_arn")
	}
	if in.Method == "" {
		in.Method = http.MethodGet
	}
	if in.Host == "" {
		in.Host = "localhost"
	}
	if !strings.HasPrefix(in.Path, "/") {
		in.Path = "/" + in.Path
	}
	r, err := http.NewRequest(in.Method, "http://"+in.Host+in.Path, nil)
	if err != nil {
		return Route{}, fmt.Errorf("route request: %w", err)
	}
	for k, v := range in.Headers {
		r.Header.Set(k, v)
	}
	return s.Route(in.Region, in.ListenerARN, r), nil
}
