package sandbox

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Authentication actions (authenticate-oidc, authenticate-cognito) as
// ELBv2 plays them: only on HTTPS listeners, before the rule's one
// routing action; the OIDC client secret is required when the action is
// created, never returned by a Describe call, and kept on a modify only
// with UseExistingClientSecret.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-authenticate-users.html
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_AuthenticateOidcActionConfig.html
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_AuthenticateCognitoActionConfig.html

// AuthAction is an authenticate-oidc or authenticate-cognito action's
// configuration.
type AuthAction struct {
	// OIDC
	Issuer, AuthorizationEndpoint, TokenEndpoint, UserInfoEndpoint string
	ClientID, ClientSecret                                         string
	// useExisting is the request's UseExistingClientSecret, resolved
	// against the action being replaced.
	useExisting bool
	// Cognito
	UserPoolARN, UserPoolClientID, UserPoolDomain string

	SessionCookieName        string
	Scope                    string
	SessionTimeout           int
	ExtraParams              map[string]string
	OnUnauthenticatedRequest string // deny, allow, authenticate
}

func isAuthAction(typ string) bool {
	return typ == "authenticate-oidc" || typ == "authenticate-cognito"
}

// parseAuth reads an authentication action's configuration.
func parseAuth(s Params, typ string) (*AuthAction, *APIError) {
	key, name := "AuthenticateOidcConfig", "OIDC"
	if typ == "authenticate-cognito" {
		key, name = "AuthenticateCognitoConfig", "Cognito"
	}
	p := s.Sub(key)
	if !s.HasSub(key) {
		return nil, verr("An %s configuration must be specified for an action of type '%s'", name, typ)
	}
	a := &AuthAction{
		SessionCookieName: p.Get("SessionCookieName"), Scope: p.Get("Scope"),
		OnUnauthenticatedRequest: p.Get("OnUnauthenticatedRequest"), SessionTimeout: 604800,
	}
	if a.SessionCookieName == "" {
		a.SessionCookieName = "AWSELBAuthSessionCookie"
	}
	if a.Scope == "" {
		a.Scope = "openid"
	}
	switch a.OnUnauthenticatedRequest {
	case "":
		a.OnUnauthenticatedRequest = "authenticate"
	case "deny", "allow", "authenticate":
	default:
		return nil, verr("On unauthenticated request '%s' must be one of 'deny', 'allow' or 'authenticate'", a.OnUnauthenticatedRequest)
	}
	n, err := intIn(p, "SessionTimeout", "sessionTimeout", 1, 604800)
	if err != nil {
		return nil, err
	}
	if n != nil {
		a.SessionTimeout = *n
	}
	entries := p.Structs("AuthenticationRequestExtraParams.entry")
	if len(entries) > 10 {
		return nil, verr("At most 10 authentication request extra parameters can be specified")
	}
	for _, e := range entries {
		if a.ExtraParams == nil {
			a.ExtraParams = map[string]string{}
		}
		a.ExtraParams[e.Get("key")] = e.Get("value")
	}
	required := map[string]*string{}
	if typ == "authenticate-oidc" {
		a.Issuer, a.AuthorizationEndpoint, a.TokenEndpoint, a.UserInfoEndpoint = p.Get("Issuer"), p.Get("AuthorizationEndpoint"), p.Get("TokenEndpoint"), p.Get("UserInfoEndpoint")
		a.ClientID, a.ClientSecret = p.Get("ClientId"), p.Get("ClientSecret")
		use, berr := p.Bool("UseExistingClientSecret", false)
		if berr != nil {
			return nil, verr("Use existing client secret '%s' must be a boolean", p.Get("UseExistingClientSecret"))
		}
		a.useExisting = use
		required = map[string]*string{"Issuer": &a.Issuer, "AuthorizationEndpoint": &a.AuthorizationEndpoint, "TokenEndpoint": &a.TokenEndpoint, "UserInfoEndpoint": &a.UserInfoEndpoint, "ClientId": &a.ClientID}
		for _, f := range []string{"Issuer", "AuthorizationEndpoint", "TokenEndpoint", "UserInfoEndpoint"} {
			// "This must be a full URL, including the HTTPS protocol,
			// the domain, and the path."
			if v := *required[f]; v != "" && !strings.HasPrefix(v, "https://") {
				return nil, verr("The %s '%s' must be a full URL with the HTTPS protocol", f, v)
			}
		}
	} else {
		a.UserPoolARN, a.UserPoolClientID, a.UserPoolDomain = p.Get("UserPoolArn"), p.Get("UserPoolClientId"), p.Get("UserPoolDomain")
		required = map[string]*string{"UserPoolArn": &a.UserPoolARN, "UserPoolClientId": &a.UserPoolClientID, "UserPoolDomain": &a.UserPoolDomain}
	}
	var fields []string
	for f := range required {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		if *required[f] == "" {
			return nil, verr("%s must be specified for an action of type '%s'", f, typ)
		}
	}
	return a, nil
}

// finishAuth checks the authentication actions of a listener or rule
// whose protocol is protocol and settles each OIDC client secret: a
// create needs one; a modify (prev are the actions it replaces) needs
// one or UseExistingClientSecret, which keeps the secret of the
// authenticate-oidc action being replaced.
func finishAuth(actions []Action, protocol string, prev []Action, modifying bool) *APIError {
	for i := range actions {
		a := &actions[i]
		if !isAuthAction(a.Type) {
			continue
		}
		if protocol != "HTTPS" {
			return errf("InvalidLoadBalancerAction", "The action type '%s' is supported only for HTTPS listeners", a.Type)
		}
		if a.Type != "authenticate-oidc" {
			continue
		}
		switch {
		case a.Auth.useExisting && !modifying:
			// "If you are creating a rule, you can omit this parameter
			// or set it to false."
			return verr("UseExistingClientSecret can be true only when modifying a listener or rule; specify ClientSecret")
		case a.Auth.useExisting && a.Auth.ClientSecret != "":
			return verr("ClientSecret and UseExistingClientSecret cannot both be specified")
		case a.Auth.useExisting:
			secret := ""
			for _, p := range prev {
				if p.Type == "authenticate-oidc" && p.Auth != nil {
					secret = p.Auth.ClientSecret
				}
			}
			if secret == "" {
				return verr("There is no existing client secret to use: specify ClientSecret")
			}
			a.Auth.ClientSecret = secret
		case a.Auth.ClientSecret == "":
			return verr("ClientSecret must be specified for an action of type 'authenticate-oidc' unless UseExistingClientSecret is true on a modify")
		}
		a.Auth.useExisting = false
	}
	return nil
}

// renderAuth renders an authentication action's configuration; the
// client secret is never returned.
func renderAuth(a Action) *X {
	au := a.Auth
	if au == nil {
		return nil
	}
	var extra *X
	if len(au.ExtraParams) > 0 {
		keys := make([]string, 0, len(au.ExtraParams))
		for k := range au.ExtraParams {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		extra = E("AuthenticationRequestExtraParams")
		for _, k := range keys {
			extra.Kids = append(extra.Kids, E("entry", T("key", k), T("value", au.ExtraParams[k])))
		}
	}
	common := []*X{T("SessionCookieName", au.SessionCookieName), T("Scope", au.Scope), I("SessionTimeout", au.SessionTimeout),
		extra, T("OnUnauthenticatedRequest", au.OnUnauthenticatedRequest)}
	if a.Type == "authenticate-cognito" {
		return E("AuthenticateCognitoConfig", append([]*X{T("UserPoolArn", au.UserPoolARN), T("UserPoolClientId", au.UserPoolClientID), T("UserPoolDomain", au.UserPoolDomain)}, common...)...)
	}
	return E("AuthenticateOidcConfig", append([]*X{T("Issuer", au.Issuer), T("AuthorizationEndpoint", au.AuthorizationEndpoint), T("TokenEndpoint", au.TokenEndpoint),
		T("UserInfoEndpoint", au.UserInfoEndpoint), T("ClientId", au.ClientID)}, common...)...)
}

// authAnswer is what the linux runtime's proxy answers a request that
// meets an authentication action. The sandbox has no identity provider
// and no session it could check, so no request is authenticated: deny
// answers 401, authenticate redirects to the provider's authorization
// endpoint as AWS does, and only allow lets the request through to the
// next action.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-authenticate-users.html
func authAnswer(a Action, req *http.Request) (lbAnswer, bool) {
	au := a.Auth
	if au == nil {
		return lbAnswer{status: http.StatusInternalServerError, body: "500 Internal Server Error"}, true
	}
	switch au.OnUnauthenticatedRequest {
	case "allow":
		return lbAnswer{}, false
	case "deny":
		return lbAnswer{status: http.StatusUnauthorized, body: "401 Authorization Required"}, true
	}
	endpoint, client := au.AuthorizationEndpoint, au.ClientID
	if a.Type == "authenticate-cognito" {
		endpoint, client = "https://"+au.UserPoolDomain+"/oauth2/authorize", au.UserPoolClientID
	}
	q := url.Values{"client_id": {client}, "response_type": {"code"}, "scope": {au.Scope},
		"redirect_uri": {"https://" + req.Host + "/oauth2/idpresponse"}}
	for k, v := range au.ExtraParams {
		q.Set(k, v)
	}
	return lbAnswer{status: http.StatusFound, location: endpoint + "?" + q.Encode()}, true
}
