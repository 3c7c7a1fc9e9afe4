package harden

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

func renderProfileMode(t *testing.T, profile, phase, mode string) string {
	t.Helper()
	set, err := LoadProfile(profile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Render(&ScriptInput{Profile: profile, Phase: phase, Mode: mode, Version: "test", Controls: set.Controls,
		Waivers: map[string]string{set.Controls[0].ID: "it's \"waived\""}, Params: defaultParams(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The script must parse as POSIX sh: dash (Debian and Ubuntu's /bin/sh)
// and whatever /bin/sh is here.
func TestScriptSyntax(t *testing.T) {
	dash := testenv.LookPath(t, "dash", "/usr/bin/dash", "/bin/dash")
	// make test installs shellcheck (scripts/install-deps.sh); without it
	// this test skips, and fails in CI.
	shellcheck := testenv.LookPath(t, "shellcheck")
	for _, p := range []struct{ profile, phase, mode string }{
		{"baseline", PhaseApply, ModeApply}, {"cis-level1", PhaseApply, ModeApply}, {"cleanup", PhaseCleanup, ModeApply},
		{"cis-level1", PhaseApply, ModeVerify}, {"cleanup", PhaseCleanup, ModeVerify},
	} {
		path := filepath.Join(t.TempDir(), p.profile+"-"+p.mode+".sh")
		writeFile(t, path, renderProfileMode(t, p.profile, p.phase, p.mode))
		for _, sh := range []string{dash, "/bin/sh"} {
			if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n %s: %v\n%s", sh, p.profile, err, out)
			}
		}
		// Word splitting and globbing of unquoted expansions are deliberate
		// (package lists, patterns); unused PARAM_ variables are for
		// template controls.
		cmd := exec.Command(shellcheck, "-s", "sh", "-S", "warning", "-e", "SC2086,SC2046,SC2254,SC2034,SC1007,SC2174,SC2119,SC2120", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("shellcheck %s: %v\n%s", p.profile, err, out)
		}
		if bash, err := exec.LookPath("bash"); err == nil {
			if out, err := exec.Command(bash, "--posix", "-n", path).CombinedOutput(); err != nil {
				t.Errorf("bash --posix -n %s: %v\n%s", p.profile, err, out)
			}
		}
	}
}

func TestJSONEscaping(t *testing.T) {
	ctl, err := ParseControls("controls", []byte(`
control "escape" {
  title    = "quotes \" and \\ backslashes"
  severity = "low"
  references = { cis = ["0"] }
  check    = <<-EOT
    printf 'quote " backslash \\ tab \t cr \r bell \007 del \177 unicode é\nsecond line\n'
  EOT
}
`), "template")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := runControls(t, fixtureRoot(t), ctl.Controls, runOpts{})
	c := wantStatus(t, r, "escape", StatusPassed)
	want := "quote \" backslash \\ tab \t cr \r bell \a del \x7f unicode é\nsecond line"
	if c.Evidence() != want {
		t.Errorf("evidence %q, want %q", c.Evidence(), want)
	}
	if c.Title != `quotes " and \ backslashes` {
		t.Errorf("title %q", c.Title)
	}
}

func TestFixtureBaselineAppliesThenChangesNothing(t *testing.T) {
	root := fixtureRoot(t)
	set, _ := LoadProfile("cis-level1")
	// Verify first: the fresh tree fails, nothing changes (runControls
	// compares the tree), and no built-in check needs a mutating helper.
	fresh, _ := runControls(t, root, set.Controls, runOpts{verify: true})
	if fresh.Phoenix.Mode != ModeVerify || fresh.Phoenix.Counts["changed"] != 0 || fresh.Phoenix.Counts["failed"] == 0 {
		t.Errorf("verify of the fresh tree: %+v", fresh.Phoenix)
	}
	for _, c := range fresh.Controls() {
		if c.Changed || c.ApplyLog != "" || strings.Contains(c.Evidence(), "mode verify:") {
			t.Errorf("verify: %s changed=%v apply_log=%q: %s", c.ID, c.Changed, c.ApplyLog, c.Evidence())
		}
	}
	wantStatus(t, fresh, "ssh-password-authentication", StatusFailed, "passwordauthentication is 'yes', want 'no'")

	r, out := runControls(t, root, set.Controls, runOpts{})
	if r.Phoenix.Mode != ModeApply {
		t.Errorf("apply run: mode %q", r.Phoenix.Mode)
	}
	for _, c := range r.Controls() {
		switch c.ID {
		case "updates-applied", "auditd-installed", "ssh-allow-users", "kmod-squashfs", "perms-cron", "auditd-enabled", "auditd-rules", "pkg-telnet",
			"timesync-chrony", "pam-tmpdir", "aide-installed", "aide-audit-tools", "aide-database", "aide-daily-check", "process-accounting", "pam-pwquality":
			continue // need a package manager, a param or packages the fixture lacks
		}
		if c.Status != StatusPassed {
			t.Errorf("%s: %s: %s\napply: %s", c.ID, c.Status, c.Evidence(), c.ApplyLog)
		}
	}
	_ = out
	wantStatus(t, r, "auditd-installed", StatusError, "auditd not installed")
	wantStatus(t, r, "ssh-allow-users", StatusNotApplicable, "ssh_allow_users is empty")
	if r.Phoenix.Score != Score(r.Controls()) {
		t.Errorf("script score %d, Go score %d", r.Phoenix.Score, Score(r.Controls()))
	}

	again, _ := runControls(t, root, set.Controls, runOpts{})
	for _, c := range again.Controls() {
		if c.Changed {
			t.Errorf("second run changed %s: %s", c.ID, c.ApplyLog)
		}
	}
	if again.Phoenix.Counts["changed"] != 0 {
		t.Errorf("second run: %d changed", again.Phoenix.Counts["changed"])
	}

	// Verify of the applied tree: the same statuses as the apply's checks.
	verified, _ := runControls(t, root, set.Controls, runOpts{verify: true})
	for _, c := range verified.Controls() {
		applied := control(t, r, c.ID)
		if applied.Status == StatusError && strings.HasPrefix(applied.Evidence(), "apply exited") && c.Status == StatusFailed {
			continue // what apply could not do, verify finds not done
		}
		if c.Status != applied.Status {
			t.Errorf("verify after apply: %s %s, apply found %s: %s", c.ID, c.Status, applied.Status, c.Evidence())
		}
	}
	if verified.Phoenix.Score != r.Phoenix.Score {
		t.Errorf("verify after apply: score %d, apply's %d", verified.Phoenix.Score, r.Phoenix.Score)
	}
}

func TestFixturePackageRemovalRefusedUnderRoot(t *testing.T) {
	root := fixtureRoot(t)
	r, _ := runControls(t, root, pick(t, allControls(t), "pkg-telnet", "pkg-nis"), runOpts{})
	// telnet is installed in the fixture; under ROOT nothing is removed.
	wantStatus(t, r, "pkg-telnet", StatusError, "installed: telnet")
	wantStatus(t, r, "pkg-nis", StatusPassed, "not installed") // config-files only
}

func TestFixtureSSHDropInOverride(t *testing.T) {
	root := fixtureRoot(t)
	ids := pick(t, allControls(t), "ssh-password-authentication", "ssh-x11-forwarding")
	// Before apply: a drop-in (as cloud-init writes) turns passwords on.
	writeFile(t, filepath.Join(root, "etc/ssh/sshd_config.d/50-cloud-init.conf"), "PasswordAuthentication yes\n")
	r, _ := runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "ssh-password-authentication", StatusFailed, "passwordauthentication is 'yes', want 'no'", "sshd -T unavailable")
	wantStatus(t, r, "ssh-x11-forwarding", StatusFailed, "x11forwarding is 'yes'")

	r, _ = runControls(t, root, ids, runOpts{})
	wantStatus(t, r, "ssh-password-authentication", StatusPassed, "passwordauthentication no")
	wantStatus(t, r, "ssh-x11-forwarding", StatusPassed)
	main := readFile(t, filepath.Join(root, "etc/ssh/sshd_config"))
	if !strings.Contains(main, "PasswordAuthentication no\nInclude /etc/ssh/sshd_config.d/*.conf") {
		t.Errorf("main config does not set the value before Include:\n%s", main)
	}
	if !strings.Contains(main, "X11Forwarding no\n") || strings.Contains(main, "X11Forwarding yes") {
		t.Errorf("X11Forwarding not replaced in place:\n%s", main)
	}
	dropin := readFile(t, filepath.Join(root, "etc/ssh/sshd_config.d/00-phoenix-hardening.conf"))
	if !strings.Contains(dropin, "PasswordAuthentication no") {
		t.Errorf("drop-in:\n%s", dropin)
	}

	// Behind the provisioner's back: the main config line goes and a drop-in
	// that sorts before phoenix's turns passwords on again.
	writeFile(t, filepath.Join(root, "etc/ssh/sshd_config"), strings.ReplaceAll(main, "PasswordAuthentication no\n", ""))
	writeFile(t, filepath.Join(root, "etc/ssh/sshd_config.d/00-aaa.conf"), "passwordauthentication yes\n")
	r, _ = runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "ssh-password-authentication", StatusFailed, "passwordauthentication is 'yes'")
}

func TestFixtureSSHMissingIsNotApplicable(t *testing.T) {
	root := fixtureRoot(t)
	os.Remove(filepath.Join(root, "etc/ssh/sshd_config"))
	r, _ := runControls(t, root, pick(t, allControls(t), "ssh-permit-root-login"), runOpts{})
	wantStatus(t, r, "ssh-permit-root-login", StatusNotApplicable, "openssh-server is not installed")
}

func TestFixtureSysctl(t *testing.T) {
	root := fixtureRoot(t)
	ids := pick(t, allControls(t), "sysctl-ip-forwarding", "sysctl-rp-filter")

	// Nothing persisted yet, live forwarding on, /proc/sys writable: failed.
	r, _ := runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "sysctl-ip-forwarding", StatusFailed, "net.ipv4.ip_forward not persisted")
	wantStatus(t, r, "sysctl-rp-filter", StatusFailed, "persisted 2 by /usr/lib/sysctl.d/50-default.conf, want 1")

	// Read-only kernel: persisted wins, the live difference is evidence.
	r, _ = runControls(t, root, ids, runOpts{env: []string{"PHOENIX_SYSCTL_READONLY=1"}})
	c := wantStatus(t, r, "sysctl-ip-forwarding", StatusPassed,
		"net.ipv4.ip_forward = 0 persisted (/etc/sysctl.d/99-phoenix-hardening.conf); live value 1 differs (kernel read-only)",
		"net.ipv6.conf.all.forwarding = 0 persisted (/etc/sysctl.d/99-phoenix-hardening.conf); live value unavailable")
	if !strings.Contains(c.ApplyLog, "live net.ipv4.ip_forward not set (kernel read-only)") {
		t.Errorf("apply log: %s", c.ApplyLog)
	}

	// Writable kernel: apply sets it live too.
	r, _ = runControls(t, root, ids, runOpts{})
	wantStatus(t, r, "sysctl-ip-forwarding", StatusPassed, "net.ipv4.ip_forward = 0 persisted (/etc/sysctl.d/99-phoenix-hardening.conf) and live")
	if got := readFile(t, filepath.Join(root, "proc/sys/net/ipv4/ip_forward")); got != "0\n" {
		t.Errorf("live ip_forward %q", got)
	}

	// A later file overrides phoenix's: the check names it.
	writeFile(t, filepath.Join(root, "etc/sysctl.d/99-zz-docker.conf"), "net.ipv4.ip_forward=1\n")
	r, _ = runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "sysctl-ip-forwarding", StatusFailed, "net.ipv4.ip_forward persisted 1 by /etc/sysctl.d/99-zz-docker.conf, want 0")
	r, _ = runControls(t, root, ids, runOpts{})
	c = wantStatus(t, r, "sysctl-ip-forwarding", StatusFailed)
	if !strings.Contains(c.ApplyLog, "note: /etc/sysctl.d/99-zz-docker.conf sets net.ipv4.ip_forward after phoenix's file") {
		t.Errorf("apply does not point at the overriding file: %s", c.ApplyLog)
	}
	// /etc/sysctl.conf is read last by `sysctl --system`.
	os.Remove(filepath.Join(root, "etc/sysctl.d/99-zz-docker.conf"))
	writeFile(t, filepath.Join(root, "etc/sysctl.conf"), "net/ipv4/ip_forward = 1\n")
	r, _ = runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "sysctl-ip-forwarding", StatusFailed, "persisted 1 by /etc/sysctl.conf")

	// Container hosts keep forwarding.
	r, _ = runControls(t, root, ids, runOpts{params: map[string]string{"allow_ip_forward": "true"}})
	wantStatus(t, r, "sysctl-ip-forwarding", StatusNotApplicable, "allow_ip_forward = true")
}

func TestFixtureModulesAndJournald(t *testing.T) {
	root := fixtureRoot(t)
	ids := pick(t, allControls(t), "kmod-cramfs", "kmod-squashfs", "journald-persistent")
	r, _ := runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "kmod-cramfs", StatusFailed, "no 'install cramfs /bin/false'")
	wantStatus(t, r, "kmod-squashfs", StatusNotApplicable, "disable_squashfs = false")
	wantStatus(t, r, "journald-persistent", StatusFailed, "Storage is 'default', want persistent")

	r, _ = runControls(t, root, ids, runOpts{params: map[string]string{"disable_squashfs": "true"}})
	wantStatus(t, r, "kmod-cramfs", StatusPassed, "install cramfs /bin/false")
	wantStatus(t, r, "kmod-squashfs", StatusPassed, "install squashfs /bin/false")
	wantStatus(t, r, "journald-persistent", StatusPassed, "Storage=persistent (/etc/systemd/journald.conf.d/60-phoenix-hardening.conf)")
	conf := readFile(t, filepath.Join(root, "etc/modprobe.d/phoenix-hardening.conf"))
	if strings.Contains(conf, "vfat") || !strings.Contains(conf, "blacklist cramfs") {
		t.Errorf("modprobe.d:\n%s", conf)
	}

	// A later journald drop-in wins.
	writeFile(t, filepath.Join(root, "etc/systemd/journald.conf.d/90-volatile.conf"), "[Journal]\nStorage=volatile\n")
	r, _ = runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "journald-persistent", StatusFailed, "Storage is 'volatile' by /etc/systemd/journald.conf.d/90-volatile.conf")
}

func TestFixturePermissionsAndAccounts(t *testing.T) {
	root := fixtureRoot(t)
	os.Chmod(filepath.Join(root, "etc/shadow"), 0o644)
	ids := pick(t, allControls(t), "perms-shadow", "perms-passwd", "accounts-uid0-only-root", "accounts-no-empty-passwords", "login-defs-pass-max-days", "login-defs-umask")
	r, _ := runControls(t, root, ids, runOpts{verify: true})
	wantStatus(t, r, "perms-shadow", StatusFailed, "/etc/shadow: 644 root:root, want at most 0640")
	wantStatus(t, r, "login-defs-pass-max-days", StatusFailed, "PASS_MAX_DAYS is '99999'")
	wantStatus(t, r, "accounts-uid0-only-root", StatusPassed)

	writeFile(t, filepath.Join(root, "etc/passwd"), readFile(t, filepath.Join(root, "etc/passwd"))+"toor:x:0:0::/root:/bin/sh\n")
	writeFile(t, filepath.Join(root, "etc/shadow"), readFile(t, filepath.Join(root, "etc/shadow"))+"toor::19000:0:99999:7:::\n")
	r, _ = runControls(t, root, ids, runOpts{})
	wantStatus(t, r, "perms-shadow", StatusPassed, "/etc/shadow: 640 root:shadow")
	wantStatus(t, r, "login-defs-pass-max-days", StatusPassed, "PASS_MAX_DAYS 365")
	wantStatus(t, r, "login-defs-umask", StatusPassed, "UMASK 027")
	wantStatus(t, r, "accounts-uid0-only-root", StatusFailed, "UID 0: root toor")
	wantStatus(t, r, "accounts-no-empty-passwords", StatusFailed, "empty password: toor")
	if defs := readFile(t, filepath.Join(root, "etc/login.defs")); strings.Count(defs, "PASS_MAX_DAYS") != 1 || !strings.Contains(defs, "MAIL_DIR /var/mail") {
		t.Errorf("login.defs:\n%s", defs)
	}
}

func TestFixtureWaiverAndDistro(t *testing.T) {
	root := fixtureRoot(t)
	extra, err := ParseControls("controls", []byte(`
control "only-al2023" {
  title    = "only on Amazon Linux"
  severity = "high"
  distros  = ["amzn-2023"]
  check    = "exit 1"
}
control "broken" {
  title    = "exits oddly"
  severity = "low"
  apply    = "echo applying; exit 7"
  check    = "echo fine"
}
`), "template")
	if err != nil {
		t.Fatal(err)
	}
	ctls := append(pick(t, allControls(t), "ssh-ciphers"), extra.Controls...)
	r, _ := runControls(t, root, ctls, runOpts{waivers: map[string]string{"ssh-ciphers": "legacy clients"}})
	c := wantStatus(t, r, "ssh-ciphers", StatusWaived, "waived: legacy clients")
	if c.Waiver == nil || c.Waiver.Justification != "legacy clients" || !c.Waiver.Skipped || c.Waiver.Run {
		t.Errorf("waiver_data %+v", c.Waiver)
	}
	if !r.Phoenix.SupportedDistro {
		t.Error("debian-12 not reported as supported")
	}
	wantStatus(t, r, "only-al2023", StatusNotApplicable, "not applicable to debian-12 (applies to: amzn-2023)")
	wantStatus(t, r, "broken", StatusError, "apply exited 7: applying", "check: fine")
	if r.Controls()[0].Results[0].Status != "skipped" || r.Controls()[2].Results[0].Status != "error" {
		t.Errorf("InSpec result statuses: %+v", r.Controls())
	}
}

func TestFixtureCleanup(t *testing.T) {
	root := fixtureRoot(t)
	for name, content := range map[string]string{
		"etc/ssh/ssh_host_ed25519_key": "k", "etc/ssh/ssh_host_ed25519_key.pub": "k",
		"root/.ssh/authorized_keys": "k", "home/admin/.ssh/authorized_keys": "packer's key",
		"root/.bash_history": "h", "home/admin/.python_history": "h",
		"var/lib/cloud/instance/obj.pkl": "x", "var/lib/cloud/.hidden": "x",
		"var/log/syslog": "x", "var/log/apt/history.log": "x", "var/log/dpkg.log.1": "x", "var/log/journal/abc/system.journal": "x",
		"var/cache/apt/archives/foo.deb": "x", "tmp/build-junk": "x", "var/tmp/.hidden": "x",
		strings.TrimPrefix(AuditPackagesFile, "/"): "lynis\n",
	} {
		writeFile(t, filepath.Join(root, name), content)
	}
	// Keys where AuthorizedKeysFile says, besides the defaults.
	writeFile(t, filepath.Join(root, "etc/ssh/sshd_config"), "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/keys/%u %h/.ssh/extra_%%keys\n")
	writeFile(t, filepath.Join(root, "etc/ssh/keys/admin"), "packer's key")
	writeFile(t, filepath.Join(root, "home/admin/.ssh/extra_%keys"), "k")
	set, _ := LoadProfile("cleanup")
	// Verify finds every kind of leftover and removes none (runControls
	// compares the tree).
	v, _ := runControls(t, root, set.Controls, runOpts{phase: PhaseCleanup, verify: true})
	for _, c := range v.Controls() {
		if c.Status != StatusFailed || c.Changed {
			t.Errorf("verify before cleanup: %s %s changed=%v: %s", c.ID, c.Status, c.Changed, c.Evidence())
		}
	}
	wantStatus(t, v, "cleanup-authorized-keys", StatusFailed, "/home/admin/.ssh/authorized_keys", "/etc/ssh/keys/admin")
	if _, err := os.Stat(filepath.Join(root, ImageCleanupReportPath)); !os.IsNotExist(err) {
		t.Errorf("verify wrote %s", ImageCleanupReportPath)
	}
	r, out := runControls(t, root, set.Controls, runOpts{phase: PhaseCleanup})
	for _, c := range r.Controls() {
		if c.Status != StatusPassed {
			t.Errorf("%s: %s: %s\n%s", c.ID, c.Status, c.Evidence(), c.ApplyLog)
		}
	}
	for _, gone := range []string{"etc/ssh/ssh_host_ed25519_key", "home/admin/.ssh/authorized_keys", "etc/ssh/keys/admin", "home/admin/.ssh/extra_%keys", "root/.bash_history", "var/lib/cloud/instance", "var/lib/cloud/.hidden", "var/log/dpkg.log.1", "var/log/journal/abc/system.journal", "tmp/build-junk", "var/tmp/.hidden"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still exists", gone)
		}
	}
	if s := readFile(t, filepath.Join(root, "etc/machine-id")); s != "" {
		t.Errorf("machine-id %q", s)
	}
	if s := readFile(t, filepath.Join(root, "var/log/syslog")); s != "" {
		t.Errorf("syslog not truncated")
	}
	if !strings.Contains(readFile(t, filepath.Join(root, "etc/systemd/system/phoenix-ssh-host-keys.service")), "ssh-keygen -A") {
		t.Error("no host key unit")
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/ssh.service.wants/phoenix-ssh-host-keys.service")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(root, ImageCleanupReportPath)); err != nil {
		t.Errorf("no cleanup report in the image: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, ImageReportPath)); !os.IsNotExist(err) {
		t.Error("cleanup wrote hardening.json")
	}
	again, _ := runControls(t, root, set.Controls, runOpts{phase: PhaseCleanup})
	for _, c := range again.Controls() {
		if c.Changed || c.Status != StatusPassed {
			t.Errorf("second cleanup: %s %s changed=%v: %s", c.ID, c.Status, c.Changed, c.ApplyLog)
		}
	}
	if v, _ := runControls(t, root, set.Controls, runOpts{phase: PhaseCleanup, verify: true}); v.Phoenix.Score != 100 {
		t.Errorf("verify after cleanup: score %d", v.Phoenix.Score)
	}
}

func TestFixtureUnsupportedDistro(t *testing.T) {
	root := fixtureRoot(t)
	writeFile(t, filepath.Join(root, "etc/os-release"), "ID=debian\nVERSION_ID=\"11\"\n")
	extra, err := ParseControls("controls", []byte(`
control "debian-12-only" {
  title    = "for bookworm"
  severity = "low"
  distros  = ["debian-12"]
  check    = "true"
}
`), "template")
	if err != nil {
		t.Fatal(err)
	}
	r, out := runControls(t, root, append(pick(t, allControls(t), "perms-passwd"), extra.Controls...), runOpts{})
	if r.Phoenix.SupportedDistro || r.Phoenix.Distro != "debian-11" || !strings.Contains(out, "warning: debian-11 is not one of debian-12 ubuntu-22.04 ubuntu-24.04 amzn-2023") {
		t.Errorf("summary %+v\n%s", r.Phoenix, out)
	}
	wantStatus(t, r, "perms-passwd", StatusPassed)
	wantStatus(t, r, "debian-12-only", StatusNotApplicable, "not applicable to debian-11 (applies to: debian-12)")
}
