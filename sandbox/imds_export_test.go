package sandbox

import "net/http"

// IMDSHandler returns the instance metadata service an instance sees, for
// tests that run without the linux runtime.
func IMDSHandler(sb *Sandbox, region, instanceID string) http.Handler {
	return newIMDSServer(sb.world, AccountID, region, instanceID)
}
