package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"regexp"
	"sort"
	"sync"
	"time"
)

// AccountID is the sandbox's first account: the one every access key
// acts in unless Options.Accounts maps it to another.
const AccountID = "123456789012"

// World is the whole simulated cloud: every region, the clock and the
// test hooks' state. One mutex guards it all; handlers are short and the
// controllers run on a ticker, so contention stays low.
type World struct {
	mu      sync.Mutex
	regions map[regionKey]*Region
	timing  *Timing
	runtime Runtime
	sandbox *Sandbox

	// sessions maps access key ids handed out by AssumeRole to the role.
	sessions map[string]assumedSession
	// accounts maps access key ids to the account they act in; a key
	// not in it acts in AccountID.
	accounts map[string]string
	// trust maps role ARNs to the accounts that may assume them
	// (TrustRole).
	trust map[string][]string
	// orgs maps account ids to their organization and organizational
	// units (JoinOrganization).
	orgs map[string]orgMembership
}

type assumedSession struct {
	RoleARN     string
	SessionName string
	Expires     time.Time
}

// Region is one region's state: a fresh account's default network and
// public images, plus what clients created.
type Region struct {
	Name    string
	Account string
	w       *World

	VPCs            map[string]*VPC
	Subnets         map[string]*Subnet
	SecurityGroups  map[string]*SecurityGroup
	KeyPairs        map[string]*KeyPair // by name
	Images          map[string]*Image
	Snapshots       map[string]*Snapshot
	Volumes         map[string]*Volume
	Instances       map[string]*Instance
	LaunchTemplates map[string]*LaunchTemplate
	LaunchConfigs   map[string]*LaunchConfiguration
	KMSKeys         map[string]*KMSKey // by key id
	KMSAliases      map[string]*KMSAlias
	ASGs            map[string]*AutoScalingGroup
	LoadBalancers   map[string]*LoadBalancer // by ARN
	Listeners       map[string]*Listener
	Rules           map[string]*Rule
	TargetGroups    map[string]*TargetGroup
	SSMParameters   map[string]*SSMParameter // by ssmKey of the name

	cloudWatch    *cloudWatch          // metrics and alarms; see cw()
	ebsDefaultKey string               // key id of alias/aws/ebs
	ssmDeleted    map[string]time.Time // when each deleted parameter went, by ssmKey
}

var regionName = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$`)

func newWorld(timing *Timing, rt Runtime) *World {
	return &World{
		regions:  map[regionKey]*Region{},
		timing:   timing,
		runtime:  rt,
		sessions: map[string]assumedSession{},
		accounts: map[string]string{},
		trust:    map[string][]string{},
		orgs:     map[string]orgMembership{},
	}
}

// region returns the named region of the first account, creating its
// fresh-account world on first use. Callers hold w.mu.
func (w *World) region(name string) (*Region, *APIError) {
	return w.accountRegion(AccountID, name)
}

// accountRegion returns the named region of an account, creating its
// fresh-account world on first use. Callers hold w.mu.
func (w *World) accountRegion(account, name string) (*Region, *APIError) {
	if r, ok := w.regions[regionKey{account, name}]; ok {
		return r, nil
	}
	if !regionName.MatchString(name) {
		return nil, &APIError{Code: "InvalidRegion", Message: fmt.Sprintf("The region '%s' does not exist", name), Status: 400}
	}
	r := &Region{
		Name:            name,
		Account:         account,
		w:               w,
		VPCs:            map[string]*VPC{},
		Subnets:         map[string]*Subnet{},
		SecurityGroups:  map[string]*SecurityGroup{},
		KeyPairs:        map[string]*KeyPair{},
		Images:          map[string]*Image{},
		Snapshots:       map[string]*Snapshot{},
		Volumes:         map[string]*Volume{},
		Instances:       map[string]*Instance{},
		LaunchTemplates: map[string]*LaunchTemplate{},
		LaunchConfigs:   map[string]*LaunchConfiguration{},
		KMSKeys:         map[string]*KMSKey{},
		KMSAliases:      map[string]*KMSAlias{},
		ASGs:            map[string]*AutoScalingGroup{},
		LoadBalancers:   map[string]*LoadBalancer{},
		Listeners:       map[string]*Listener{},
		Rules:           map[string]*Rule{},
		TargetGroups:    map[string]*TargetGroup{},
		SSMParameters:   map[string]*SSMParameter{},
		ssmDeleted:      map[string]time.Time{},
	}
	seedRegion(r)
	w.regions[regionKey{account, name}] = r
	return r, nil
}

// sortedRegions returns the regions of every account in account and
// name order, for stable output.
func (w *World) sortedRegions() []*Region {
	keys := make([]regionKey, 0, len(w.regions))
	for k := range w.regions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Account != keys[j].Account {
			return keys[i].Account < keys[j].Account
		}
		return keys[i].Name < keys[j].Name
	})
	out := make([]*Region, 0, len(keys))
	for _, k := range keys {
		out = append(out, w.regions[k])
	}
	return out
}

// Clock helpers. Every duration the sandbox waits, from its own timing
// profile or from a user's setting (health check interval, warmup,
// deregistration delay), passes through the time scale.

func (w *World) now() time.Time { return time.Now() }

// after returns now plus d scaled.
func (w *World) after(d time.Duration) time.Time { return w.now().Add(w.timing.scale(d)) }

// afterSeconds returns now plus n user-facing seconds, scaled.
func (w *World) afterSeconds(n int) time.Time {
	return w.after(time.Duration(n) * time.Second)
}

// chance returns true with probability p.
func (w *World) chance(p float64) bool { return mrand.Float64() < p }

// IDs.

func randHex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)[:n]
}

// newID makes an EC2-style id: prefix, dash, 17 hex digits.
func newID(prefix string) string { return prefix + "-0" + randHex(16) }

func newUUID() string {
	h := randHex(32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func randDigits(n int) string {
	out := make([]byte, n)
	for i := range out {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		out[i] = byte('0' + d.Int64())
	}
	return string(out)
}

// arn builds an ARN in this region and account.
func (r *Region) arn(service, resource string) string {
	return "arn:aws:" + service + ":" + r.Name + ":" + r.Account + ":" + resource
}

// azs lists the availability zones of the region: three, six in us-east-1.
func (r *Region) azs() []string {
	letters := "abc"
	if r.Name == "us-east-1" {
		letters = "abcdef"
	}
	out := make([]string, len(letters))
	for i, l := range letters {
		out[i] = r.Name + string(l)
	}
	return out
}
