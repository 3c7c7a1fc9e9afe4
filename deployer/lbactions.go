package deployer

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// keepClientSecrets prepares actions read from DescribeRules or
// DescribeListeners to be written back: AWS never returns an
// authenticate-oidc action's client secret and requires one on every
// modify unless UseExistingClientSecret is true, so each such action asks
// for the secret it has. Without that, moving the weights would fail, or
// (with a secret of phoenix's own) break the users' sign-in.
// https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_AuthenticateOidcActionConfig.html
func keepClientSecrets(actions []elbtypes.Action) {
	for i := range actions {
		if cfg := actions[i].AuthenticateOidcConfig; cfg != nil {
			c := *cfg
			c.ClientSecret, c.UseExistingClientSecret = nil, aws.Bool(true)
			actions[i].AuthenticateOidcConfig = &c
		}
	}
}
