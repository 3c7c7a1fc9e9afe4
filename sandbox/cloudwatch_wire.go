package sandbox

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch answers in three wire protocols, each sent by a client the
// project meets: the query protocol (AWS CLI 2.9, older SDKs), Smithy
// RPCv2 CBOR (the AWS SDK for Go v2 in go.mod) and AWS JSON 1.0 (SDKs
// between the two). All three reach the same handlers: the input is
// flattened into query-style Params, the output is a cwObj that each
// protocol writes in its own form.
// https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/making-api-requests.html

const (
	cwService   = "monitoring"
	cwSmithyID  = "GraniteServiceVersion20100801"
	cwNamespace = "http://monitoring.amazonaws.com/doc/2010-08-01/"
)

// cwObj is an ordered structure of a CloudWatch response. Values are
// string, int, float64, bool, time.Time, []any, cwObj or cwMap.
type cwObj []cwField

type cwField struct {
	k string
	v any
}

// cwMap is a map<string, double> (ExtendedStatistics).
type cwMap map[string]float64

// cwWire is the protocol of one CloudWatch request.
type cwWire int

const (
	cwQuery cwWire = iota
	cwCBOR
	cwJSON
)

// cwWireOf tells the protocol of a request signed for CloudWatch.
func cwWireOf(req *http.Request) cwWire {
	switch {
	case strings.HasPrefix(req.URL.Path, "/service/"):
		return cwCBOR
	case strings.HasPrefix(req.Header.Get("X-Amz-Target"), cwSmithyID+"."):
		return cwJSON
	}
	return cwQuery
}

// decodeCloudWatch reads the action and the input of a CBOR or JSON
// request as query-style Params.
func decodeCloudWatch(wire cwWire, req *http.Request, body []byte) (string, Params, *APIError) {
	form := url.Values{}
	var action string
	switch wire {
	case cwCBOR:
		parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
		if len(parts) != 4 || parts[0] != "service" || parts[1] != cwSmithyID || parts[2] != "operation" {
			return "", Params{}, &APIError{Code: "UnknownOperationException", Message: "unknown path " + req.URL.Path, Status: 404}
		}
		action = parts[3]
		if len(body) > 0 {
			v, err := cbor.Decode(body)
			if err != nil {
				return "", Params{}, errf("SerializationException", "the request body is not valid CBOR: %v", err)
			}
			flattenCBOR(form, "", v)
		}
	case cwJSON:
		action = strings.TrimPrefix(req.Header.Get("X-Amz-Target"), cwSmithyID+".")
		if len(body) > 0 {
			var v any
			d := json.NewDecoder(strings.NewReader(string(body)))
			d.UseNumber()
			if err := d.Decode(&v); err != nil {
				return "", Params{}, errf("SerializationException", "the request body is not valid JSON: %v", err)
			}
			flattenJSON(form, "", v)
		}
	}
	return action, newParams(form), nil
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

func flattenCBOR(form url.Values, prefix string, v cbor.Value) {
	switch x := v.(type) {
	case cbor.Map:
		for k, e := range x {
			flattenCBOR(form, joinKey(prefix, k), e)
		}
	case cbor.List:
		for i, e := range x {
			flattenCBOR(form, prefix+".member."+strconv.Itoa(i+1), e)
		}
	case cbor.String:
		form.Set(prefix, string(x))
	case cbor.Uint:
		form.Set(prefix, strconv.FormatUint(uint64(x), 10))
	case cbor.NegInt:
		form.Set(prefix, "-"+strconv.FormatUint(uint64(x)+1, 10))
	case cbor.Float32:
		form.Set(prefix, strconv.FormatFloat(float64(x), 'g', -1, 32))
	case cbor.Float64:
		form.Set(prefix, strconv.FormatFloat(float64(x), 'g', -1, 64))
	case cbor.Bool:
		form.Set(prefix, strconv.FormatBool(bool(x)))
	case *cbor.Tag:
		// Tag 1 is an epoch timestamp; Params.Time reads epoch seconds.
		flattenCBOR(form, prefix, x.Value)
	}
}

func flattenJSON(form url.Values, prefix string, v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			flattenJSON(form, joinKey(prefix, k), e)
		}
	case []any:
		for i, e := range x {
			flattenJSON(form, prefix+".member."+strconv.Itoa(i+1), e)
		}
	case string:
		form.Set(prefix, x)
	case json.Number:
		form.Set(prefix, x.String())
	case bool:
		form.Set(prefix, strconv.FormatBool(x))
	}
}

// cwTime reads a timestamp sent as ISO 8601 (query) or epoch seconds
// (CBOR, JSON).
func cwTime(p Params, key string) (time.Time, bool, *APIError) {
	s := p.Get(key)
	if s == "" {
		return time.Time{}, false, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true, nil
		}
	}
	return time.Time{}, false, errf("InvalidParameterValue", "The parameter %s must be a timestamp; %q is not one.", key, s)
}

// cwErrorShapes maps query error codes to the error shapes the Smithy
// model names (what RPCv2 and JSON clients read from __type).
var cwErrorShapes = map[string]string{
	"InvalidParameterValue":       "InvalidParameterValueException",
	"InvalidParameterCombination": "InvalidParameterCombinationException",
	"MissingParameter":            "MissingRequiredParameterException",
	"LimitExceeded":               "LimitExceededFault",
	"InvalidNextToken":            "InvalidNextToken",
	"InvalidFormat":               "InvalidFormatFault",
	"InternalServiceError":        "InternalServiceFault",
}

func writeCloudWatchResult(rw http.ResponseWriter, wire cwWire, action, reqID string, out any) {
	obj, _ := out.(cwObj)
	rw.Header().Set("x-amzn-RequestId", reqID)
	switch wire {
	case cwCBOR:
		rw.Header().Set("Content-Type", "application/cbor")
		rw.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		rw.Write(cbor.Encode(toCBOR(obj)))
	case cwJSON:
		rw.Header().Set("Content-Type", "application/x-amz-json-1.0")
		json.NewEncoder(rw).Encode(toJSON(obj))
	default:
		rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		io.WriteString(rw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
		io.WriteString(rw, `<`+action+`Response xmlns="`+cwNamespace+`">`)
		E(action+"Result", toXML(obj)...).write(rw)
		E("ResponseMetadata", T("RequestId", reqID)).write(rw)
		io.WriteString(rw, `</`+action+`Response>`)
	}
}

func writeCloudWatchError(rw http.ResponseWriter, wire cwWire, reqID string, e *APIError) {
	if wire == cwQuery {
		writeError(rw, cwService, reqID, e)
		return
	}
	status := e.Status
	if status == 0 {
		status = 400
	}
	shape := e.Code
	if s, ok := cwErrorShapes[e.Code]; ok {
		shape = s
	}
	kind := "Sender"
	if status >= 500 {
		kind = "Receiver"
	}
	rw.Header().Set("x-amzn-RequestId", reqID)
	// CloudWatch is awsQueryCompatible: clients take the query code from
	// this header.
	rw.Header().Set("X-Amzn-Query-Error", e.Code+";"+kind)
	if wire == cwCBOR {
		rw.Header().Set("Content-Type", "application/cbor")
		rw.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		rw.WriteHeader(status)
		rw.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#" + shape), "message": cbor.String(e.Message)}))
		return
	}
	rw.Header().Set("Content-Type", "application/x-amz-json-1.0")
	rw.WriteHeader(status)
	json.NewEncoder(rw).Encode(map[string]string{"__type": "com.amazonaws.cloudwatch#" + shape, "message": e.Message})
}

func toCBOR(v any) cbor.Value {
	switch x := v.(type) {
	case cwObj:
		m := cbor.Map{}
		for _, f := range x {
			if f.v != nil {
				m[f.k] = toCBOR(f.v)
			}
		}
		return m
	case cwMap:
		m := cbor.Map{}
		for k, f := range x {
			m[k] = cbor.Float64(f)
		}
		return m
	case []any:
		l := cbor.List{}
		for _, e := range x {
			l = append(l, toCBOR(e))
		}
		return l
	case string:
		return cbor.String(x)
	case int:
		if x < 0 {
			return cbor.NegInt(uint64(-x) - 1)
		}
		return cbor.Uint(uint64(x))
	case float64:
		return cbor.Float64(x)
	case bool:
		return cbor.Bool(x)
	case time.Time:
		return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(x.UnixMilli()) / 1000)}
	}
	return &cbor.Nil{}
}

func toJSON(v any) any {
	switch x := v.(type) {
	case cwObj:
		m := map[string]any{}
		for _, f := range x {
			if f.v != nil {
				m[f.k] = toJSON(f.v)
			}
		}
		return m
	case []any:
		l := []any{}
		for _, e := range x {
			l = append(l, toJSON(e))
		}
		return l
	case time.Time:
		return float64(x.UnixMilli()) / 1000
	}
	return v
}

func toXML(obj cwObj) []*X {
	var out []*X
	for _, f := range obj {
		if x := xmlValue(f.k, f.v); x != nil {
			out = append(out, x)
		}
	}
	return out
}

func xmlValue(name string, v any) *X {
	switch x := v.(type) {
	case nil:
		return nil
	case cwObj:
		return E(name, toXML(x)...)
	case cwMap:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var entries []*X
		for _, k := range keys {
			entries = append(entries, E("entry", T("key", k), T("value", cwFloat(x[k]))))
		}
		return List(name, entries)
	case []any:
		var items []*X
		for _, e := range x {
			items = append(items, xmlValue("member", e))
		}
		return List(name, items)
	case string:
		return T(name, x)
	case int:
		return I(name, x)
	case float64:
		return T(name, cwFloat(x))
	case bool:
		return B(name, x)
	case time.Time:
		return Time(name, x)
	}
	return nil
}

func cwFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
