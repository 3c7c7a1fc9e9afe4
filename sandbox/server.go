package sandbox

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// call is one API request as a handler sees it. Handlers run with
// World.mu held.
type call struct {
	w       *World
	r       *Region
	p       Params
	body    []byte // JSON protocols
	service string
	action  string
	access  string // access key id from the signature
}

// handler serves one action. XML services return []*X (the children of
// the result element); JSON services return a value to marshal.
type handler func(c *call) (any, *APIError)

// handlers maps service -> action -> handler; service files fill it in
// their init functions.
var handlers = map[string]map[string]handler{}

func register(service, action string, h handler) {
	if handlers[service] == nil {
		handlers[service] = map[string]handler{}
	}
	handlers[service][action] = h
}

// Protocol facts per service.
var xmlNamespaces = map[string]string{
	"ec2":                  "http://ec2.amazonaws.com/doc/2016-11-15/",
	"autoscaling":          "http://autoscaling.amazonaws.com/doc/2011-01-01/",
	"elasticloadbalancing": "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
	"sts":                  "https://sts.amazonaws.com/doc/2011-06-15/",
	cwService:              cwNamespace,
}

// throttleCodes are each service's throttling error.
var throttleCodes = map[string]struct {
	code   string
	status int
}{
	"ec2":                  {"RequestLimitExceeded", 503},
	"autoscaling":          {"Throttling", 400},
	"elasticloadbalancing": {"Throttling", 400},
	"sts":                  {"Throttling", 400},
	"kms":                  {"ThrottlingException", 400},
	"ssm":                  {"ThrottlingException", 400},
	cwService:              {"Throttling", 400},
}

// jsonTargets are the JSON 1.1 services with the X-Amz-Target prefix of
// their actions ("TrentService.CreateKey", "AmazonSSM.PutParameter").
var jsonTargets = map[string]string{
	"kms": "TrentService.",
	"ssm": "AmazonSSM.",
}

// ServeHTTP routes test hooks and AWS API requests.
func (s *Sandbox) ServeHTTP(rw http.ResponseWriter, req *http.Request) {
	if strings.HasPrefix(req.URL.Path, "/_sandbox/") {
		s.serveHook(rw, req)
		return
	}
	reqID := newUUID()
	body, err := io.ReadAll(io.LimitReader(req.Body, 32<<20))
	if err != nil {
		http.Error(rw, "reading body", http.StatusBadRequest)
		return
	}
	scope, ok := parseCredentialScope(req)
	if !ok {
		// Where the service is unknown, answer in the query shape AWS uses
		// for unsigned requests.
		svc := guessService(req)
		writeError(rw, svc, reqID, &APIError{Code: missingAuthCode(svc), Message: "Request is missing Authentication Token", Status: 403})
		return
	}
	svc := scope.Service
	// CloudWatch speaks three protocols (cloudwatch_wire.go).
	cw := svc == cwService
	var wire cwWire
	if cw {
		wire = cwWireOf(req)
	}
	// From here on errors are written in the request's protocol.
	writeError := func(rw http.ResponseWriter, svc, reqID string, e *APIError) {
		if cw {
			writeCloudWatchError(rw, wire, reqID, e)
			return
		}
		writeError(rw, svc, reqID, e)
	}
	var action string
	var params Params
	if prefix, ok := jsonTargets[svc]; ok {
		action = strings.TrimPrefix(req.Header.Get("X-Amz-Target"), prefix)
	} else if cw && wire != cwQuery {
		var perr *APIError
		if action, params, perr = decodeCloudWatch(wire, req, body); perr != nil {
			writeError(rw, svc, reqID, perr)
			return
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			writeError(rw, svc, reqID, errf("MalformedQueryString", "The request body is not a valid query string"))
			return
		}
		for k, v := range req.URL.Query() {
			if !strings.HasPrefix(k, "X-Amz-") {
				form[k] = v
			}
		}
		params = newParams(form)
		action = form.Get("Action")
	}
	svcHandlers, known := handlers[svc]
	if !known {
		writeError(rw, svc, reqID, &APIError{Code: "UnrecognizedClientException", Message: "The sandbox does not emulate the service " + svc, Status: 400})
		return
	}
	h, ok := svcHandlers[action]
	if !ok {
		code := "InvalidAction"
		if _, isJSON := jsonTargets[svc]; isJSON {
			code = "UnknownOperationException"
		}
		writeError(rw, svc, reqID, &APIError{Code: code, Message: "The action " + action + " is not valid for this web service.", Status: 400})
		return
	}

	s.countCall(svc, action)
	if held := s.holdCall(req.Context(), scope.Region, svc, action, false); held != nil {
		defer close(held.handled)
	}
	if ferr, delay := s.faultFor(svc, action); delay > 0 || ferr != nil {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-req.Context().Done():
				return
			}
		}
		if ferr != nil {
			writeError(rw, svc, reqID, ferr)
			return
		}
	}

	w := s.world
	w.mu.Lock()
	account := w.callerAccount(scope.AccessKey)
	region, rerr := w.accountRegion(account, scope.Region)
	if rerr != nil {
		w.mu.Unlock()
		writeError(rw, svc, reqID, rerr)
		return
	}
	c := &call{w: w, r: region, p: params, body: body, service: svc, action: action, access: scope.AccessKey}
	out, aerr := h(c)
	w.mu.Unlock()
	s.holdCall(req.Context(), scope.Region, svc, action, true)
	if aerr != nil {
		writeError(rw, svc, reqID, aerr)
		return
	}
	if cw {
		writeCloudWatchResult(rw, wire, action, reqID, out)
		return
	}
	writeResult(rw, svc, action, reqID, out)
}

func missingAuthCode(svc string) string {
	if _, isJSON := jsonTargets[svc]; isJSON {
		return "MissingAuthenticationTokenException"
	}
	return "MissingAuthenticationToken"
}

// guessService picks the error shape for a request that carries no
// credential scope.
func guessService(req *http.Request) string {
	target := req.Header.Get("X-Amz-Target")
	for svc, prefix := range jsonTargets {
		if strings.HasPrefix(target, prefix) {
			return svc
		}
	}
	return "sts"
}

func writeResult(rw http.ResponseWriter, svc, action, reqID string, out any) {
	if _, isJSON := jsonTargets[svc]; isJSON {
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		rw.Header().Set("x-amzn-RequestId", reqID)
		if out == nil {
			out = struct{}{}
		}
		json.NewEncoder(rw).Encode(out)
		return
	}
	kids, _ := out.([]*X)
	ns := xmlNamespaces[svc]
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.Header().Set("x-amzn-RequestId", reqID)
	io.WriteString(rw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	if svc == "ec2" {
		root := &X{Name: action + "Response"}
		root.Kids = append([]*X{T("requestId", reqID)}, kids...)
		io.WriteString(rw, `<`+action+`Response xmlns="`+ns+`">`)
		for _, k := range root.Kids {
			if k != nil {
				k.write(rw)
			}
		}
		io.WriteString(rw, `</`+action+`Response>`)
		return
	}
	io.WriteString(rw, `<`+action+`Response xmlns="`+ns+`">`)
	E(action+"Result", kids...).write(rw) // E drops nil children
	E("ResponseMetadata", T("RequestId", reqID)).write(rw)
	io.WriteString(rw, `</`+action+`Response>`)
}

func writeError(rw http.ResponseWriter, svc, reqID string, e *APIError) {
	status := e.Status
	if status == 0 {
		status = 400
	}
	rw.Header().Set("x-amzn-RequestId", reqID)
	switch svc {
	case "kms", "ssm":
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		rw.WriteHeader(status)
		json.NewEncoder(rw).Encode(map[string]string{"__type": e.Code, "message": e.Message})
	case "ec2":
		rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		rw.WriteHeader(status)
		io.WriteString(rw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
		E("Response", E("Errors", E("Error", T("Code", e.Code), T("Message", e.Message))), T("RequestID", reqID)).write(rw)
	default:
		rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		rw.WriteHeader(status)
		kind := "Sender"
		if status >= 500 {
			kind = "Receiver"
		}
		io.WriteString(rw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
		io.WriteString(rw, `<ErrorResponse xmlns="`+xmlNamespaces[svc]+`">`)
		E("Error", T("Type", kind), T("Code", e.Code), T("Message", e.Message)).write(rw)
		T("RequestId", reqID).write(rw)
		io.WriteString(rw, `</ErrorResponse>`)
	}
}

// credentialScope is what the SigV4 credential says about a request.
type credentialScope struct {
	AccessKey string
	Date      string
	Region    string
	Service   string
}

// parseCredentialScope reads the SigV4 credential from the Authorization
// header or from a presigned query string. The signature is not checked:
// the sandbox accepts any key, as the issue of who may call is not its
// business, but an unsigned request is refused like AWS refuses it.
func parseCredentialScope(req *http.Request) (credentialScope, bool) {
	var cred string
	if auth := req.Header.Get("Authorization"); strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") {
		for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
			part = strings.TrimSpace(part)
			if strings.HasPrefix(part, "Credential=") {
				cred = strings.TrimPrefix(part, "Credential=")
			}
		}
	} else if q := req.URL.Query(); q.Get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256" {
		cred = q.Get("X-Amz-Credential")
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return credentialScope{}, false
	}
	return credentialScope{AccessKey: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}, true
}
