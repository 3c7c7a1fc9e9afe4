package sandbox

import (
	"regexp"
	"strings"
	"time"
)

func init() {
	register("sts", "GetCallerIdentity", stsGetCallerIdentity)
	register("sts", "AssumeRole", stsAssumeRole)
}

var (
	roleARN     = regexp.MustCompile(`^arn:aws:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$`)
	sessionName = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
)

func stsGetCallerIdentity(c *call) (any, *APIError) {
	if s, ok := c.w.sessions[c.access]; ok && c.w.now().Before(s.Expires) {
		m := roleARN.FindStringSubmatch(s.RoleARN)
		account, role := c.r.Account, "role"
		if m != nil {
			account, role = m[1], m[2]
		}
		return []*X{
			T("Arn", "arn:aws:sts::"+account+":assumed-role/"+role+"/"+s.SessionName),
			T("UserId", "AROA"+strings.ToUpper(randHex(17))+":"+s.SessionName),
			T("Account", account),
		}, nil
	}
	return []*X{
		T("Arn", accountCaller(c.r.Account).ARN),
		T("UserId", "AIDASANDBOXUSER00001"),
		T("Account", c.r.Account),
	}, nil
}

func stsAssumeRole(c *call) (any, *APIError) {
	arn := c.p.Get("RoleArn")
	name := c.p.Get("RoleSessionName")
	if arn == "" {
		return nil, errf("ValidationError", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	}
	if name == "" {
		return nil, errf("ValidationError", "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
	}
	m := roleARN.FindStringSubmatch(arn)
	if m == nil {
		return nil, errf("ValidationError", "%s is invalid", arn)
	}
	if !sessionName.MatchString(name) {
		return nil, errf("ValidationError", "1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", name)
	}
	// A role trusts only the accounts its trust policy names (TrustRole),
	// its own account included; without one, AWS answers AccessDenied.
	// The sandbox has no IAM, so a role exists once it trusts someone.
	// https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_common-scenarios_aws-accounts.html
	// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html
	if !c.w.trusts(arn, c.r.Account) {
		who := c.principal()
		caller := who.ARN
		if who.Session != "" {
			caller = who.Session
		}
		return nil, &APIError{Code: "AccessDenied", Status: 403,
			Message: "User: " + caller + " is not authorized to perform: sts:AssumeRole on resource: " + arn}
	}
	dur, err := c.p.Int("DurationSeconds", 3600)
	if err != nil {
		return nil, errf("ValidationError", "%s", err.Message)
	}
	if dur < 900 || dur > 43200 {
		return nil, errf("ValidationError", "1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", dur)
	}
	key := "ASIA" + strings.ToUpper(randHex(16))
	expires := c.w.now().Add(time.Duration(dur) * time.Second).UTC()
	c.w.sessions[key] = assumedSession{RoleARN: arn, SessionName: name, Expires: expires}
	roleID := "AROA" + strings.ToUpper(randHex(17))
	return []*X{
		E("Credentials",
			T("AccessKeyId", key),
			T("SecretAccessKey", randHex(40)),
			T("SessionToken", "FwoGZXIvYXdzE"+randHex(120)),
			T("Expiration", expires.Format(time.RFC3339)),
		),
		E("AssumedRoleUser",
			T("AssumedRoleId", roleID+":"+name),
			T("Arn", "arn:aws:sts::"+m[1]+":assumed-role/"+m[2]+"/"+name),
		),
		I("PackedPolicySize", 0),
	}, nil
}
