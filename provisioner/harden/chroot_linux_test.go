package harden

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
	"github.com/immutable-infra/packer-plugin-phoenix/sandbox/linuxrt"
)

// debianChroot copies the sandbox's Debian 12 base root file system (built
// with debootstrap and cached) into a temp dir and gives it host keys, as a
// booted instance has. Scripts then run in it with chroot and ROOT empty,
// so sshd -T, sshd -t, dpkg and visudo are the real ones.
func debianChroot(t testing.TB) string {
	t.Helper()
	testenv.RequireE2E(t)
	testenv.RequireRoot(t)
	testenv.LookPath(t, "chroot", "/usr/sbin/chroot")
	base, err := linuxrt.EnsureBaseRootfs(context.Background(), "", io.Discard)
	if err != nil {
		testenv.Skip(t, "no Debian base rootfs: "+err.Error())
	}
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", base+"/.", dir+"/").CombinedOutput(); err != nil {
		t.Fatalf("copying rootfs: %v\n%s", err, out)
	}
	if out, err := exec.Command("chroot", dir, "ssh-keygen", "-A").CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -A: %v\n%s", err, out)
	}
	return dir
}

// chrootRun runs the controls in the chroot; with mode verify, nothing in
// the tree outside /run may change (the script's own upload aside).
func chrootRun(t *testing.T, dir string, controls []*Control, phase string, params map[string]string, mode string) (*Report, time.Duration) {
	t.Helper()
	p := defaultParams(t)
	for k, v := range params {
		p[k] = v
	}
	in := &ScriptInput{Profile: "test", Phase: phase, Mode: mode, Version: "test", Controls: controls, Params: p}
	s, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tmp/phoenix-harden.sh"), s)
	var before map[string]string
	if mode == ModeVerify {
		before = treeState(t, dir)
		delete(before, "tmp/phoenix-harden.sh")
	}
	cmd := exec.Command("chroot", dir, "/bin/sh", "/tmp/phoenix-harden.sh")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	if before != nil {
		if diff := diffTree(before, treeState(t, dir)); diff != "" {
			t.Errorf("mode verify changed the tree:\n%s", diff)
		}
		// The chroot's /run is a plain directory of the tree (no /proc
		// either): the script must say its report stays there.
		if want := "phoenix-harden: warning: /run is not a tmpfs here, so " + in.ReportPath() + " stays in the image"; !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	r, err := ParseReport([]byte(readFile(t, filepath.Join(dir, strings.TrimPrefix(in.ReportPath(), "/")))))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mode() != in.mode() {
		t.Errorf("report of mode %q, want %q", r.Mode(), in.mode())
	}
	return r, took
}

func TestChrootDebianCISLevel1(t *testing.T) {
	dir := debianChroot(t)
	set, err := LoadProfile("cis-level1")
	if err != nil {
		t.Fatal(err)
	}
	offline := map[string]string{"install_packages": "false", "ssh_allow_users": "admin ec2-user"}
	// cloud-init's drop-in turns password logins on, as on Debian's AMIs.
	writeFile(t, filepath.Join(dir, "etc/ssh/sshd_config.d/50-cloud-init.conf"), "PasswordAuthentication yes\n")
	r, _ := chrootRun(t, dir, set.Controls, PhaseApply, offline, ModeVerify)
	wantStatus(t, r, "ssh-password-authentication", StatusFailed, "passwordauthentication is 'yes', want 'no' (sshd -T)")

	r, took := chrootRun(t, dir, set.Controls, PhaseApply, offline, ModeApply)
	t.Logf("cis-level1 apply+verify of %d controls: %s, one run", len(set.Controls), took.Round(time.Millisecond))
	expected := map[string]string{
		"updates-applied":  StatusError, // no package lists offline: cannot tell
		"auditd-installed": StatusError, // install_packages = false
		"timesync-chrony":  StatusError, "pam-tmpdir": StatusError, "pam-pwquality": StatusError,
		"aide-installed": StatusError, "process-accounting": StatusError,
		"kmod-squashfs":  StatusNotApplicable,
		"auditd-enabled": StatusNotApplicable, "auditd-rules": StatusNotApplicable,
		"aide-audit-tools": StatusNotApplicable, "aide-database": StatusNotApplicable, "aide-daily-check": StatusNotApplicable,
	}
	for _, c := range r.Controls() {
		want := expected[c.ID]
		if want == "" {
			want = StatusPassed
		}
		if c.Status != want {
			t.Errorf("%s: %s, want %s: %s\napply: %s", c.ID, c.Status, want, c.Evidence(), c.ApplyLog)
		}
	}
	wantStatus(t, r, "ssh-password-authentication", StatusPassed, "passwordauthentication no (sshd -T)")
	wantStatus(t, r, "auditd-installed", StatusError, "auditd not installed and install_packages = false")
	// sshd -T prints one allowusers line per user.
	wantStatus(t, r, "ssh-allow-users", StatusPassed, "allowusers admin ec2-user (sshd -T)")

	again, _ := chrootRun(t, dir, set.Controls, PhaseApply, offline, ModeApply)
	for _, c := range again.Controls() {
		if c.Changed {
			t.Errorf("second run changed %s: %s", c.ID, c.ApplyLog)
		}
	}

	// Behind the provisioner's back: phoenix's lines go, a drop-in that sorts
	// first and a later sysctl file take over.
	main := filepath.Join(dir, "etc/ssh/sshd_config")
	writeFile(t, main, strings.ReplaceAll(readFile(t, main), "PasswordAuthentication no\n", ""))
	os.Remove(filepath.Join(dir, "etc/ssh/sshd_config.d/00-phoenix-hardening.conf"))
	writeFile(t, filepath.Join(dir, "etc/sysctl.d/99-zz-router.conf"), "net.ipv4.ip_forward = 1\n")
	r, _ = chrootRun(t, dir, set.Controls, PhaseApply, offline, ModeVerify)
	wantStatus(t, r, "ssh-password-authentication", StatusFailed, "passwordauthentication is 'yes', want 'no' (sshd -T)")
	wantStatus(t, r, "sysctl-ip-forwarding", StatusFailed, "net.ipv4.ip_forward persisted 1 by /etc/sysctl.d/99-zz-router.conf, want 0")
}

func TestChrootSSHDRejectsRestores(t *testing.T) {
	dir := debianChroot(t)
	bad, err := ParseControls("controls", []byte(`
control "bad-cipher" {
  title    = "a cipher sshd does not know"
  severity = "high"
  apply    = "ph_sshd_set Ciphers no-such-cipher@example.com"
  check    = "ph_sshd_load || exit $?; ph_sshd_expect ciphers no-such-cipher@example.com"
}
`), "template")
	if err != nil {
		t.Fatal(err)
	}
	before := readFile(t, filepath.Join(dir, "etc/ssh/sshd_config"))
	r, _ := chrootRun(t, dir, bad.Controls, PhaseApply, nil, ModeApply)
	wantStatus(t, r, "bad-cipher", StatusError, "sshd -t rejected Ciphers no-such-cipher@example.com", "restored sshd configuration")
	if after := readFile(t, filepath.Join(dir, "etc/ssh/sshd_config")); after != before {
		t.Errorf("sshd_config not restored:\n%s", after)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc/ssh/sshd_config.d/00-phoenix-hardening.conf")); !os.IsNotExist(err) {
		t.Error("drop-in left after sshd -t rejected it")
	}
}

func TestChrootCleanup(t *testing.T) {
	dir := debianChroot(t)
	writeFile(t, filepath.Join(dir, "home/admin/.ssh/authorized_keys"), "ssh-ed25519 AAAA packer\n")
	writeFile(t, filepath.Join(dir, "home/admin/.bash_history"), "sudo -i\n")
	writeFile(t, filepath.Join(dir, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n")
	set, _ := LoadProfile("cleanup")
	// Verify first: it finds what a build leaves and removes none of it.
	r, _ := chrootRun(t, dir, set.Controls, PhaseCleanup, nil, ModeVerify)
	wantStatus(t, r, "cleanup-authorized-keys", StatusFailed, "/home/admin/.ssh/authorized_keys")
	wantStatus(t, r, "cleanup-machine-id", StatusFailed)
	if r.Phoenix.Counts["changed"] != 0 {
		t.Errorf("verify of the cleanup phase: %d changed", r.Phoenix.Counts["changed"])
	}

	r, _ = chrootRun(t, dir, set.Controls, PhaseCleanup, nil, ModeApply)
	for _, c := range r.Controls() {
		if c.Status != StatusPassed {
			t.Errorf("%s: %s: %s", c.ID, c.Status, c.Evidence())
		}
	}
	r, _ = chrootRun(t, dir, set.Controls, PhaseCleanup, nil, ModeVerify)
	if r.Phoenix.Score != 100 {
		t.Errorf("verify after cleanup: score %d", r.Phoenix.Score)
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	if len(keys) > 0 {
		t.Errorf("host keys left: %v", keys)
	}
	// What first boot does: the unit's ssh-keygen -A makes keys sshd accepts.
	if out, err := exec.Command("chroot", dir, "sh", "-c", "ssh-keygen -A && mkdir -p /run/sshd && sshd -t").CombinedOutput(); err != nil {
		t.Errorf("after cleanup, first boot's ssh-keygen -A + sshd -t: %v\n%s", err, out)
	}
}
