package sandbox

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The instance metadata service (IMDS) as an instance sees it at
// http://169.254.169.254/: IMDSv2 session tokens, and IMDSv1 only where
// the instance's HttpTokens allow it. The linux runtime serves it inside
// each instance's own network namespace.
//
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
// (the token PUT, its TTL header, the token header on reads, the response
// codes 400, 401, 403, 404, 405)
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
// (HttpTokens required: a request without a valid token is refused;
// HttpEndpoint disabled: the metadata cannot be accessed)
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstanceMetadataOptions.html
// (the settings and their defaults)

const (
	imdsTokenHeader    = "X-aws-ec2-metadata-token"
	imdsTokenTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds"
	imdsMaxTokenTTL    = 21600 // six hours
)

// imdsServer answers one instance's metadata requests from the world's
// current state of that instance.
type imdsServer struct {
	w       *World
	account string
	region  string
	id      string

	mu     sync.Mutex
	tokens map[string]time.Time // token -> expiry
}

func newIMDSServer(w *World, account, region, id string) *imdsServer {
	return &imdsServer{w: w, account: account, region: region, id: id, tokens: map[string]time.Time{}}
}

// imdsView is what one request needs of the instance, copied under the
// world's lock.
type imdsView struct {
	md       MetadataOptions
	inst     Instance
	tags     map[string]string
	userData []byte
}

func (s *imdsServer) view() (imdsView, bool) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	r := s.w.regions[regionKey{s.account, s.region}]
	if r == nil {
		return imdsView{}, false
	}
	in := r.Instances[s.id]
	if in == nil {
		return imdsView{}, false
	}
	v := imdsView{md: in.Metadata, inst: *in, tags: map[string]string{}}
	for k, val := range in.Tags {
		v.tags[k] = val
	}
	if in.UserData != "" {
		v.userData = decodeUserData(in.UserData)
	}
	return v, true
}

func (s *imdsServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	v, ok := s.view()
	if !ok {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	if v.md.HttpEndpoint == "disabled" {
		// "you will not be able to access your instance metadata"
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	switch req.Method {
	case http.MethodPut:
		s.putToken(w, req)
		return
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if tok := req.Header.Get(imdsTokenHeader); tok != "" {
		if !s.validToken(tok) {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	} else if v.md.HttpTokens != "optional" {
		// HttpTokens required: IMDSv1 is refused.
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	body, ok := s.lookup(v, req.URL.Path)
	if !ok {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(body)
}

func (s *imdsServer) putToken(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/latest/api/token" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	// A token request that came through a proxy is refused: IMDSv2's
	// defence against open reverse proxies.
	if req.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(req.Header.Get(imdsTokenTTLHeader))
	if err != nil || ttl < 1 || ttl > imdsMaxTokenTTL {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	s.mu.Lock()
	now := time.Now()
	for t, exp := range s.tokens {
		if now.After(exp) {
			delete(s.tokens, t)
		}
	}
	s.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	s.mu.Unlock()
	w.Header().Set(imdsTokenTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(tok))
}

func (s *imdsServer) validToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// lookup answers a metadata path: a leaf's value, or a category's
// entries one a line (sub-categories end in "/").
func (s *imdsServer) lookup(v imdsView, path string) ([]byte, bool) {
	in := v.inst
	az := in.AZ
	hostname := "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + "." + s.region + ".compute.internal"
	if s.region == "us-east-1" {
		hostname = "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + ".ec2.internal"
	}
	leaves := map[string]string{
		"ami-id":                      in.ImageID,
		"instance-id":                 in.ID,
		"instance-type":               in.InstanceType,
		"local-ipv4":                  in.PrivateIP,
		"local-hostname":              hostname,
		"hostname":                    hostname,
		"reservation-id":              in.ReservationID,
		"placement/availability-zone": az,
		"placement/region":            s.region,
	}
	switch strings.TrimSuffix(path, "/") {
	case "", "/latest":
		return []byte("dynamic\nmeta-data\nuser-data"), true
	case "/latest/user-data":
		if len(v.userData) == 0 {
			return nil, false
		}
		return v.userData, true
	case "/latest/dynamic":
		return []byte("instance-identity/"), true
	case "/latest/dynamic/instance-identity":
		return []byte("document"), true
	case "/latest/dynamic/instance-identity/document":
		doc, _ := json.MarshalIndent(map[string]any{
			"accountId": s.account, "architecture": "x86_64", "availabilityZone": az,
			"imageId": in.ImageID, "instanceId": in.ID, "instanceType": in.InstanceType,
			"pendingTime": in.LaunchTime.UTC().Format(time.RFC3339), "privateIp": in.PrivateIP,
			"region": s.region, "version": "2017-09-30",
		}, "", "  ")
		return doc, true
	case "/latest/meta-data":
		return []byte("ami-id\nhostname\ninstance-id\ninstance-type\nlocal-hostname\nlocal-ipv4\nplacement/\nreservation-id\ntags/"), true
	case "/latest/meta-data/placement":
		return []byte("availability-zone\nregion"), true
	case "/latest/meta-data/tags":
		return []byte("instance"), true
	}
	const tagsPrefix = "/latest/meta-data/tags/instance"
	if rest, ok := strings.CutPrefix(path, tagsPrefix); ok {
		// Tags are there only where the instance allows them.
		// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html
		if v.md.InstanceMetadataTags != "enabled" {
			return nil, false
		}
		rest = strings.TrimPrefix(rest, "/")
		if rest == "" {
			keys := make([]string, 0, len(v.tags))
			for k := range v.tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			return []byte(strings.Join(keys, "\n")), true
		}
		val, ok := v.tags[rest]
		return []byte(val), ok
	}
	if leaf, ok := strings.CutPrefix(path, "/latest/meta-data/"); ok {
		if val, ok := leaves[leaf]; ok && val != "" {
			return []byte(val), true
		}
	}
	return nil, false
}

// decodeUserData turns the user data as RunInstances took it (base64)
// into the bytes the instance sees.
func decodeUserData(b64 string) []byte {
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return []byte(b64) // as AWS, which takes what it is given
	}
	return data
}
