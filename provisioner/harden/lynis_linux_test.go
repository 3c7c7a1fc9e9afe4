//go:build linux

package harden

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/benchreport"
	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

// The independent audit: Lynis, Debian's package (scripts/install-deps.sh
// installs it), audits the stock Debian 12 image, a baseline image and a
// cis-level1 image. Until linux-runtime instances boot with systemd it
// audits a chroot of each image's tree; lynisTarget is the one seam to
// change for booted instances (run the same command over SSH).

// lynisTarget runs `lynis audit system` on an image and returns its report.
type lynisTarget interface {
	lynis(tb testing.TB) *LynisReport
}

// chrootImage is an image's root file system in a directory.
type chrootImage struct{ dir string }

// lynisFiles are the paths of Debian's lynis package that a run needs.
var lynisFiles = []string{"/usr/sbin/lynis", "/usr/share/lynis", "/etc/lynis"}

// lynis copies the host's Lynis into the tree for the run, runs it in a
// chroot with its own mount and PID namespaces (a /proc of its own, gone
// with the namespace) and removes every file it added, so the tree is the
// image again.
func (c chrootImage) lynis(tb testing.TB) *LynisReport {
	tb.Helper()
	lynisBin := testenv.LookPath(tb, "lynis", "/usr/sbin/lynis")
	if lynisBin != "/usr/sbin/lynis" {
		testenv.Skip(tb, "lynis is not Debian's package (/usr/sbin/lynis); run scripts/install-deps.sh")
	}
	var added []string
	for _, p := range lynisFiles {
		dst := filepath.Join(c.dir, p)
		if _, err := os.Lstat(dst); err == nil {
			tb.Fatalf("the image already has %s: the audit would not be of the image alone", p)
		}
		if out, err := exec.Command("cp", "-a", p, dst).CombinedOutput(); err != nil {
			tb.Fatalf("copying %s into the image: %v\n%s", p, err, out)
		}
		added = append(added, dst)
	}
	report := filepath.Join(c.dir, "tmp/lynis-report.dat")
	logf := filepath.Join(c.dir, "tmp/lynis.log")
	defer func() {
		for _, p := range append(added, report, logf) {
			if err := os.RemoveAll(p); err != nil {
				tb.Errorf("removing %s: %v", p, err)
			}
		}
	}()
	// A network namespace of its own, with the image's persisted net.*
	// sysctl values, as systemd-sysctl sets them when an instance boots;
	// kernel-wide keys (kernel.*, fs.*) stay the host's, which this test
	// must not change.
	prelude := netSysctlPrelude(tb, c.dir)
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc="+filepath.Join(c.dir, "proc"),
		"/bin/sh", "-c", prelude+`exec chroot "$0" /usr/sbin/lynis audit system --quick --no-colors --report-file /tmp/lynis-report.dat --logfile /tmp/lynis.log`, c.dir)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "TERM=dumb"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("lynis audit system: %v\n%s", err, tail(string(out), 40))
	}
	b, err := os.ReadFile(report)
	if err != nil {
		tb.Fatalf("lynis report: %v\n%s", err, tail(string(out), 40))
	}
	r, err := ParseLynisReport(b)
	if err != nil {
		tb.Fatalf("%v\n%s", err, tail(string(out), 40))
	}
	return r
}

// netSysctlPrelude is sh that writes the image's persisted net.ipv4 and
// net.ipv6 sysctl
// values into /proc/sys/net of the current network namespace: the files
// systemd-sysctl reads, by file name across its directories (an earlier
// directory masks the same name in a later one), then /etc/sysctl.conf;
// later assignments win.
func netSysctlPrelude(tb testing.TB, dir string) string {
	tb.Helper()
	byName := map[string]string{}
	var names []string
	for _, d := range []string{"etc/sysctl.d", "run/sysctl.d", "usr/local/lib/sysctl.d", "usr/lib/sysctl.d", "lib/sysctl.d"} {
		files, _ := filepath.Glob(filepath.Join(dir, d, "*.conf"))
		for _, f := range files {
			if _, ok := byName[filepath.Base(f)]; !ok {
				byName[filepath.Base(f)] = f
				names = append(names, filepath.Base(f))
			}
		}
	}
	sort.Strings(names)
	var files []string
	for _, n := range names {
		files = append(files, byName[n])
	}
	files = append(files, filepath.Join(dir, "etc/sysctl.conf"))
	values := map[string]string{}
	var keys []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimPrefix(strings.TrimSpace(line), "-")
			k, v, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
				continue
			}
			k = strings.ReplaceAll(strings.TrimSpace(k), "/", ".")
			// Only keys each network namespace has its own of: net.core's
			// BPF keys, for one, are the host's.
			if !(strings.HasPrefix(k, "net.ipv4.") || strings.HasPrefix(k, "net.ipv6.")) || strings.ContainsAny(k, "*' ") {
				continue
			}
			if _, seen := values[k]; !seen {
				keys = append(keys, k)
			}
			values[k] = strings.TrimSpace(v)
		}
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "echo %s > /proc/sys/%s 2>/dev/null; ", shq(values[k]), strings.ReplaceAll(k, ".", "/"))
	}
	return b.String()
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// hardenedImage is a copy of the base root file system with a profile
// applied the way a build does it (the script as root, packages from
// Debian's mirror), then the cleanup phase; profile "" leaves it stock.
// The tree borrows the host's resolv.conf for the run, as a build instance
// has DNS, and gets its own (empty) one back.
func hardenedImage(tb testing.TB, profile string, params map[string]string) (chrootImage, *Report) {
	tb.Helper()
	dir := debianChroot(tb)
	if profile == "" {
		return chrootImage{dir}, nil
	}
	set, err := LoadProfile(profile)
	if err != nil {
		tb.Fatal(err)
	}
	resolv := filepath.Join(dir, "etc/resolv.conf")
	own, err := os.ReadFile(resolv)
	if err != nil {
		tb.Fatal(err)
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, resolv, string(host))
	r := runImageScript(tb, dir, set.Controls, PhaseApply, params)
	cl, err := LoadProfile("cleanup")
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, resolv, string(own))
	runImageScript(tb, dir, cl.Controls, PhaseCleanup, nil)
	return chrootImage{dir}, r
}

// runImageScript runs a rendered script in the tree as a build runs it:
// as root with the tree as /, and with a /proc. That /proc is the host
// kernel's, and the network the host's (apt needs it): the script must
// not set live values there, so PHOENIX_SYSCTL_READONLY makes it only
// persist them in the tree, where they take effect when an instance boots.
func runImageScript(tb testing.TB, dir string, controls []*Control, phase string, params map[string]string) *Report {
	tb.Helper()
	p := defaultParams(tb)
	for k, v := range params {
		p[k] = v
	}
	in := &ScriptInput{Profile: "test", Phase: phase, Mode: ModeApply, Version: "test", Controls: controls, Params: p}
	s, err := Render(in)
	if err != nil {
		tb.Fatal(err)
	}
	writeFile(tb, filepath.Join(dir, "tmp/phoenix-harden.sh"), s)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc="+filepath.Join(dir, "proc"),
		"chroot", dir, "/bin/sh", "/tmp/phoenix-harden.sh")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "PHOENIX_SYSCTL_READONLY=1"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("%s script: %v\n%s", phase, err, tail(string(out), 40))
	}
	r, err := ParseReport([]byte(readFile(tb, filepath.Join(dir, strings.TrimPrefix(in.ReportPath(), "/")))))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// lynisRefs maps each Lynis test id to the controls that name it.
func lynisRefs(controls []*Control) map[string][]string {
	m := map[string][]string{}
	for _, c := range controls {
		for _, id := range c.References["lynis"] {
			m[id] = append(m[id], c.ID)
		}
	}
	return m
}

// unexplained lists the findings of an audit that have neither a control
// of the profile that did not pass, nor a control of cis-level1 (for a
// baseline image: the stricter profile covers it), nor a written reason.
func unexplained(audit *LynisReport, r *Report) []string {
	all, _ := LoadProfile("cis-level1")
	refs := lynisRefs(all.Controls)
	status := map[string]string{}
	inProfile := map[string]bool{}
	for _, c := range r.Controls() {
		status[c.ID] = c.Status
		inProfile[c.ID] = true
	}
	var out []string
	for _, id := range audit.FindingIDs() {
		if lynisReason(id) != nil {
			continue
		}
		ok := false
		for _, ctl := range refs[id] {
			if !inProfile[ctl] || status[ctl] != StatusPassed {
				ok = true // the profile does not claim it, or does not claim to pass it
			}
		}
		if !ok {
			out = append(out, fmt.Sprintf("%s (controls passing: %s)", id, strings.Join(refs[id], ", ")))
		}
	}
	return out
}

func findingLines(a *LynisReport) string {
	var l []string
	for _, f := range a.Warnings {
		l = append(l, "  warning "+f.ID+": "+f.Text)
	}
	for _, f := range a.Suggestions {
		l = append(l, "  suggestion "+f.ID+": "+f.Text)
	}
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// lynisIndexes audits the three images and returns their reports.
func lynisIndexes(tb testing.TB) (stock, baseline, cis *LynisReport, baselineReport, cisReport *Report) {
	tb.Helper()
	img, _ := hardenedImage(tb, "", nil)
	stock = img.lynis(tb)
	img, baselineReport = hardenedImage(tb, "baseline", nil)
	baseline = img.lynis(tb)
	img, cisReport = hardenedImage(tb, "cis-level1", nil)
	cis = img.lynis(tb)
	return
}

// TestLynisAuditsProfiles: Lynis confirms what the profiles claim. Each
// hardened image scores the profile's goal or better, above the stock
// image, and every finding left on it has a control that says it does not
// pass, or a reason in the docs (LynisReasons).
func TestLynisAuditsProfiles(t *testing.T) {
	stock, baseline, cis, br, cr := lynisIndexes(t)
	t.Logf("Lynis %s hardening index: stock %d, baseline %d, cis-level1 %d", stock.Version, stock.Index, baseline.Index, cis.Index)
	t.Logf("phoenix-harden score: baseline %d, cis-level1 %d", br.Phoenix.Score, cr.Phoenix.Score)
	t.Logf("findings on the cis-level1 image:\n%s", findingLines(cis))
	if baseline.Index <= stock.Index || cis.Index <= baseline.Index {
		t.Errorf("Lynis index: stock %d, baseline %d, cis-level1 %d; want each profile above the one before", stock.Index, baseline.Index, cis.Index)
	}
	if baseline.Index < LynisGoalBaseline {
		t.Errorf("Lynis index of the baseline image: %d, want at least %d\n%s", baseline.Index, LynisGoalBaseline, findingLines(baseline))
	}
	// A chroot: the floor; a booted instance: the goal (see the constants).
	if cis.Index < LynisChrootFloorCISLevel1 {
		t.Errorf("Lynis index of the cis-level1 image (a chroot): %d, want at least %d\n%s", cis.Index, LynisChrootFloorCISLevel1, findingLines(cis))
	}
	for _, c := range append(br.Controls(), cr.Controls()...) {
		if c.Status == StatusError {
			t.Errorf("%s: error: %s\napply: %s", c.ID, c.Evidence(), c.ApplyLog)
		}
	}
	if u := unexplained(baseline, br); len(u) > 0 {
		t.Errorf("Lynis findings on the baseline image that no failing control or documented reason explains:\n  %s", strings.Join(u, "\n  "))
	}
	if u := unexplained(cis, cr); len(u) > 0 {
		t.Errorf("Lynis findings on the cis-level1 image that no failing control or documented reason explains:\n  %s", strings.Join(u, "\n  "))
	}
	// Each reason is still needed: a reason for a finding Lynis no longer
	// makes on either image goes stale in the docs. Findings about what
	// runs (Booted) depend on what Lynis can see of processes and services
	// from the chroot, which varies with its version and the host: those
	// may be missing.
	found := map[string]bool{}
	for _, id := range append(baseline.FindingIDs(), cis.FindingIDs()...) {
		found[id] = true
	}
	for _, r := range LynisReasons {
		if !found[r.ID] && !r.Booted {
			t.Errorf("LynisReasons has %s (%s), which Lynis no longer reports on the baseline or cis-level1 image", r.ID, r.Topic)
		}
	}
}

// BenchmarkLynisIndex prints the three hardening indexes side by side in
// `make bench`: baseline and cis-level1 against the stock image audited in
// the same run.
func BenchmarkLynisIndex(b *testing.B) {
	const (
		rowBaseline = "Lynis hardening index: baseline profile vs stock image"
		rowCIS      = "Lynis hardening index: cis-level1 profile vs stock image"
	)
	b.Cleanup(func() {
		if b.Skipped() {
			why := "not measured: needs root on Linux, PHOENIX_E2E=1 and Debian's lynis package"
			if err := benchreport.Add(benchreport.NewRow(rowBaseline, 0, 0, "index", why), benchreport.NewRow(rowCIS, 0, 0, "index", why)); err != nil {
				b.Error(err)
			}
		}
	})
	for i := 0; i < b.N; i++ {
		stock, baseline, cis, _, _ := lynisIndexes(b)
		note := fmt.Sprintf("Lynis %s hardening index (0-100) of a chroot of each image, default params; baseline column: the stock Debian 12 image", stock.Version)
		if err := benchreport.Add(
			benchreport.NewRow(rowBaseline, float64(baseline.Index), float64(stock.Index), "index", note),
			benchreport.NewRow(rowCIS, float64(cis.Index), float64(stock.Index), "index", note),
		); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(stock.Index), "stock-index")
		b.ReportMetric(float64(baseline.Index), "baseline-index")
		b.ReportMetric(float64(cis.Index), "cis-level1-index")
	}
}

// TestInstanceAuditLynis: with audit = "lynis" the build instance installs
// Lynis for the run, the report (and the build output) carries its index
// and findings, still in one round trip; the cleanup phase removes it.
func TestInstanceAuditLynis(t *testing.T) {
	e := startInstance(t)
	if out, code, _ := e.shStatus("dpkg-query -W -f='${Status}' lynis 2>/dev/null"); code == 0 && strings.Contains(out, " installed") {
		t.Fatalf("the base image already has lynis: the test could not tell what the audit installed")
	}
	run := e.harden(map[string]interface{}{"profile": "baseline", "audit": "lynis"})
	if run.err != nil {
		t.Fatalf("baseline with audit: %v\n%s", run.err, run.ui)
	}
	run.wantOneRoundTrip(t, "baseline with audit")
	a := run.report.Phoenix.Audit
	if a == nil || a.Tool != "lynis" || a.HardeningIndex <= 0 || a.HardeningIndex > 100 || a.Error != "" || !a.InstalledForRun || a.Version == "" {
		t.Fatalf("report's audit: %+v", a)
	}
	if len(a.Suggestions) == 0 {
		t.Errorf("the audit reports no suggestion at all: %+v", a)
	}
	if want := fmt.Sprintf("audit: Lynis %s hardening index %d (", a.Version, a.HardeningIndex); !strings.Contains(run.ui, want) {
		t.Errorf("build output lacks %q:\n%s", want, run.ui)
	}
	t.Logf("Lynis %s on the baseline instance: index %d, %d warnings, %d suggestions, %.1f s", a.Version, a.HardeningIndex, len(a.Warnings), len(a.Suggestions), a.Duration)
	// Installed for the run, listed for the cleanup phase, its own report
	// and log not left in the image.
	status := func() string { return e.sh("dpkg-query -W -f='${Status}' lynis 2>/dev/null; true") }
	if st, list, logs := status(), e.sh("sudo cat "+AuditPackagesFile+" 2>&1; true"), e.sh("ls /var/log/lynis* 2>/dev/null; true"); st != "install ok installed" || list != "lynis\n" || logs != "" {
		t.Errorf("after the audit: lynis %q, %s %q, Lynis's own files in /var/log %q", st, AuditPackagesFile, list, logs)
	}

	clean := e.harden(map[string]interface{}{"phase": "cleanup"})
	if clean.err != nil {
		t.Fatalf("cleanup: %v\n%s", clean.err, clean.ui)
	}
	c := controlOf(t, clean.report, "cleanup-audit-tool")
	if c.Status != StatusPassed || !c.Changed || !strings.Contains(c.ApplyLog, "removed lynis") {
		t.Errorf("cleanup-audit-tool: %s changed=%v: %s\napply: %s", c.Status, c.Changed, c.Evidence(), c.ApplyLog)
	}
	if st, left := status(), e.sh("sudo ls -d /usr/sbin/lynis /usr/share/lynis /etc/lynis "+AuditPackagesFile+" 2>/dev/null; true"); strings.HasSuffix(st, " installed") || left != "" {
		t.Errorf("after the cleanup phase: lynis %q, still there: %q", st, left)
	}
}
