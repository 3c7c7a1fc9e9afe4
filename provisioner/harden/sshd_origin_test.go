package harden

import (
	"path/filepath"
	"strings"
	"testing"
)

// A failed sshd check names the line that sets the effective value, so an
// overriding drop-in is found without reading every file by hand.
func TestFixtureSSHDEvidenceNamesOrigin(t *testing.T) {
	root := fixtureRoot(t)
	ids := pick(t, allControls(t), "ssh-password-authentication", "ssh-x11-forwarding", "ssh-max-auth-tries")
	r, _ := runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "ssh-password-authentication", StatusFailed, "passwordauthentication is 'yes', want 'no' (parsed config files; sshd -T unavailable); no file sets it: the default applies")
	wantStatus(t, r, "ssh-x11-forwarding", StatusFailed, "set by /etc/ssh/sshd_config: X11Forwarding yes")

	runControls(t, root, ids, runOpts{})
	main := filepath.Join(root, "etc/ssh/sshd_config")
	writeFile(t, main, strings.ReplaceAll(readFile(t, main), "PasswordAuthentication no\n", ""))
	writeFile(t, filepath.Join(root, "etc/ssh/sshd_config.d/00-aaa.conf"), "# cloud-init\n  PasswordAuthentication=yes\nMaxAuthTries 10\n")
	r, _ = runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "ssh-password-authentication", StatusFailed, "set by /etc/ssh/sshd_config.d/00-aaa.conf: PasswordAuthentication=yes")
	// phoenix's MaxAuthTries in sshd_config precedes the Include: it wins.
	wantStatus(t, r, "ssh-max-auth-tries", StatusPassed)
	wantStatus(t, r, "ssh-x11-forwarding", StatusPassed)
}
