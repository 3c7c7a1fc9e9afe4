package harden

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

// localComm is a packersdk.Communicator over a fixture tree: remote paths
// are under root, commands run locally with dash and PHOENIX_ROOT=root. It
// counts every call so a test can prove the one round trip.
type localComm struct {
	root                       string
	mu                         sync.Mutex
	uploads, starts, downloads int
	other                      []string
	failUpload                 error
}

var _ packersdk.Communicator = (*localComm)(nil)

func (c *localComm) Upload(path string, r io.Reader, _ *os.FileInfo) error {
	c.mu.Lock()
	c.uploads++
	c.mu.Unlock()
	if c.failUpload != nil {
		return c.failUpload
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	local := filepath.Join(c.root, path)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	return os.WriteFile(local, b, 0o644)
}

func (c *localComm) Start(ctx context.Context, rc *packersdk.RemoteCmd) error {
	c.mu.Lock()
	c.starts++
	c.mu.Unlock()
	cmd := exec.CommandContext(ctx, "dash", "-c", rc.Command)
	cmd.Env = []string{"PHOENIX_ROOT=" + c.root, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr = rc.Stdout, rc.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = 255
		}
		rc.SetExited(code)
	}()
	return nil
}

func (c *localComm) Download(path string, w io.Writer) error {
	c.mu.Lock()
	c.downloads++
	c.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(c.root, path))
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (c *localComm) UploadDir(dst, src string, _ []string) error {
	c.other = append(c.other, "UploadDir "+dst)
	return errors.New("not used")
}

func (c *localComm) DownloadDir(src, dst string, _ []string) error {
	c.other = append(c.other, "DownloadDir "+src)
	return errors.New("not used")
}

func (c *localComm) roundTrips() (int, int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uploads, c.starts, c.downloads
}

type testUi struct {
	*packersdk.BasicUi
	buf *bytes.Buffer
}

func newUi() *testUi {
	var b bytes.Buffer
	return &testUi{&packersdk.BasicUi{Reader: &bytes.Buffer{}, Writer: &b, ErrorWriter: &b, PB: &packersdk.NoopProgressTracker{}}, &b}
}

func provision(t *testing.T, root string, raw map[string]interface{}) (*localComm, *testUi, error) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.LookPath(t, "dash", "/usr/bin/dash", "/bin/dash")
	if _, ok := raw["execute_command"]; !ok {
		// The fake runs commands on this host: point the script path into the tree.
		raw["execute_command"] = "dash '" + root + "{{.Path}}'"
	}
	raw["packer_build_name"] = "web"
	var p Provisioner
	if err := p.Prepare(raw); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	comm := &localComm{root: root}
	ui := newUi()
	err := p.Provision(context.Background(), ui, comm, map[string]interface{}{})
	return comm, ui, err
}

func uiText(ui *testUi) string { return ui.buf.String() }

func TestProvisionOneRoundTrip(t *testing.T) {
	root := fixtureRoot(t)
	reports := filepath.Join(t.TempDir(), "reports")
	comm, ui, err := provision(t, root, map[string]interface{}{
		"profile":     "baseline",
		"report_path": reports,
		"skip":        []map[string]interface{}{{"id": "pkg-telnet", "reason": "the fixture cannot remove packages"}},
		"params":      map[string]string{"install_packages": "false", "install_time_sync": "false", "install_pam_tmpdir": "false", "install_pwquality": "false"},
	})
	if err != nil {
		t.Fatalf("Provision: %v\n%s", err, uiText(ui))
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 1 || len(comm.other) > 0 {
		t.Errorf("round trips: %d uploads, %d runs, %d downloads, other %v; want 1, 1, 1", u, s, d, comm.other)
	}
	out := uiText(ui)
	for _, want := range []string{"Hardening: phase apply, profile baseline", "score 100/100 on debian-12", "reports: "} {
		if !strings.Contains(out, want) {
			t.Errorf("ui lacks %q:\n%s", want, out)
		}
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			rows[f[3]] = strings.Join(f[:3], " ")
		}
	}
	if rows["CONTROL"] != "STATUS SEVERITY CHANGED" || rows["ssh-password-authentication"] != "passed critical yes" || rows["pkg-telnet"] != "waived high -" {
		t.Errorf("table rows: %v", rows)
	}
	raw := readFile(t, filepath.Join(reports, "web-hardening.json"))
	r, err := ParseReport([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if raw != readFile(t, filepath.Join(root, "var/lib/phoenix/hardening.json")) {
		t.Error("local JSON differs from the image copy")
	}
	if r.Phoenix.Score != Score(r.Controls()) || r.Phoenix.Profile != "baseline" {
		t.Errorf("report summary %+v", r.Phoenix)
	}
	var suites struct {
		Suite struct {
			Tests int `xml:"tests,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(readFile(t, filepath.Join(reports, "web-hardening.junit.xml"))), &suites); err != nil || suites.Suite.Tests != len(r.Controls()) {
		t.Errorf("junit: %v, %d tests", err, suites.Suite.Tests)
	}
	left, _ := filepath.Glob(filepath.Join(root, "tmp", "phoenix-harden-*.sh"))
	if len(left) > 0 {
		t.Errorf("script left behind: %v", left)
	}
}

func TestProvisionFailsOnCriticalControl(t *testing.T) {
	root := fixtureRoot(t)
	// A UID 0 account besides root: a critical control that apply cannot fix.
	writeFile(t, filepath.Join(root, "etc/passwd"), readFile(t, filepath.Join(root, "etc/passwd"))+"toor:x:0:0::/root:/bin/sh\n")
	comm, _, err := provision(t, root, map[string]interface{}{
		"profile":  "none",
		"controls": "control \"always\" {\n  title = \"passes\"\n  severity = \"low\"\n  check = \"echo ok\"\n}\n",
	})
	if err != nil {
		t.Fatalf("template-only profile: %v", err)
	}
	_ = comm

	comm, ui, err := provision(t, root, map[string]interface{}{"profile": "baseline", "params": map[string]string{"install_packages": "false", "install_time_sync": "false", "install_pam_tmpdir": "false", "install_pwquality": "false"},
		"skip": []map[string]interface{}{{"id": "pkg-telnet", "reason": "fixture"}}})
	if err == nil {
		t.Fatalf("no error:\n%s", uiText(ui))
	}
	if !strings.Contains(err.Error(), `control(s) at or above fail_on "critical" did not pass:`) ||
		!strings.Contains(err.Error(), "accounts-uid0-only-root (critical, failed): UID 0: root toor") {
		t.Errorf("error: %v", err)
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 1 {
		t.Errorf("round trips %d %d %d", u, s, d)
	}
}

func TestProvisionFailsBelowMinScore(t *testing.T) {
	root := fixtureRoot(t)
	_, _, err := provision(t, root, map[string]interface{}{
		"profile":   "none",
		"min_score": 80,
		"controls": "control \"ok\" {\n  title = \"passes\"\n  severity = \"low\"\n  check = \"echo fine\"\n}\n" +
			"control \"nope\" {\n  title = \"fails\"\n  severity = \"medium\"\n  check = \"echo 'not there'; exit 1\"\n}\n",
	})
	if err == nil || !strings.Contains(err.Error(), "hardening score 25 is below min_score 80") || !strings.Contains(err.Error(), "nope (medium, failed): not there") {
		t.Errorf("err = %v", err)
	}
}

func TestProvisionScriptFailure(t *testing.T) {
	root := fixtureRoot(t)
	comm, _, err := provision(t, root, map[string]interface{}{"execute_command": "dash -c 'exit 3' '{{.Path}}'"})
	if err == nil || !strings.Contains(err.Error(), "hardening script exited 3") {
		t.Errorf("err = %v", err)
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 0 {
		t.Errorf("round trips %d %d %d: no download after a failed run", u, s, d)
	}
}

func TestProvisionUploadFailure(t *testing.T) {
	var p Provisioner
	if err := p.Prepare(map[string]interface{}{}); err != nil {
		t.Fatal(err)
	}
	comm := &localComm{root: t.TempDir(), failUpload: errors.New("disk full")}
	err := p.Provision(context.Background(), newUi(), comm, nil)
	if err == nil || !strings.Contains(err.Error(), "uploading hardening script to /tmp/phoenix-harden-") || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v", err)
	}
	if _, s, _ := comm.roundTrips(); s != 0 {
		t.Error("ran after a failed upload")
	}
}

func TestProvisionCleanupPhase(t *testing.T) {
	root := fixtureRoot(t)
	writeFile(t, filepath.Join(root, "home/admin/.ssh/authorized_keys"), "ssh-ed25519 AAAA packer\n")
	writeFile(t, filepath.Join(root, "etc/ssh/ssh_host_rsa_key"), "k")
	reports := t.TempDir()
	comm, ui, err := provision(t, root, map[string]interface{}{"phase": "cleanup", "report_path": reports})
	if err != nil {
		t.Fatalf("%v\n%s", err, uiText(ui))
	}
	if _, err := os.Stat(filepath.Join(root, "home/admin/.ssh/authorized_keys")); !os.IsNotExist(err) {
		t.Error("authorized_keys left")
	}
	if _, err := os.Stat(filepath.Join(reports, "web-cleanup.json")); err != nil {
		t.Error(err)
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 1 {
		t.Errorf("round trips %d %d %d", u, s, d)
	}
	if !bytes.Contains([]byte(uiText(ui)), []byte("cleanup-authorized-keys")) {
		t.Error("table lacks cleanup controls")
	}
}

// BenchmarkProvisionBaseline measures one provision of the baseline profile
// on a fixture tree: the whole apply and verify, and its round trips.
func BenchmarkProvisionBaseline(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.LookPath(b, "dash", "/usr/bin/dash", "/bin/dash")
	log.SetOutput(io.Discard) // BasicUi logs every line
	defer log.SetOutput(os.Stderr)
	trips := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := fixtureRoot(b)
		var p Provisioner
		if err := p.Prepare(map[string]interface{}{"execute_command": "dash '" + root + "{{.Path}}'",
			"skip": []map[string]interface{}{{"id": "pkg-telnet", "reason": "fixture"}}}); err != nil {
			b.Fatal(err)
		}
		comm := &localComm{root: root}
		b.StartTimer()
		if err := p.Provision(context.Background(), newUi(), comm, nil); err != nil {
			b.Fatal(err)
		}
		u, s, d := comm.roundTrips()
		trips += u + s + d
	}
	b.ReportMetric(float64(trips)/float64(b.N), "roundtrips/op")
}

// An audit that cannot run fails the build with the auditor's reason, and
// the report says so; in a fixture tree (ROOT set) it never runs.
func TestProvisionAuditThatCannotRunFails(t *testing.T) {
	root := fixtureRoot(t)
	comm, ui, err := provision(t, root, map[string]interface{}{
		"profile":  "none",
		"audit":    "lynis",
		"controls": "control \"always\" {\n  title = \"passes\"\n  severity = \"low\"\n  check = \"echo ok\"\n}\n",
	})
	if err == nil || err.Error() != "audit: lynis did not complete: not auditing under ROOT" {
		t.Fatalf("err = %v\n%s", err, uiText(ui))
	}
	if u, s, d := comm.roundTrips(); u != 1 || s != 1 || d != 1 {
		t.Errorf("round trips %d %d %d", u, s, d)
	}
	r, perr := ParseReport([]byte(readFile(t, filepath.Join(root, strings.TrimPrefix(ImageReportPath, "/")))))
	if perr != nil {
		t.Fatal(perr)
	}
	a := r.Phoenix.Audit
	if a == nil || a.Tool != "lynis" || a.HardeningIndex != -1 || a.InstalledForRun || a.Error != "not auditing under ROOT" || a.Warnings == nil || a.Suggestions == nil {
		t.Errorf("report's audit: %+v", a)
	}
	if _, err := os.Stat(filepath.Join(root, strings.TrimPrefix(AuditPackagesFile, "/"))); !os.IsNotExist(err) {
		t.Errorf("%s written although nothing was installed: %v", AuditPackagesFile, err)
	}
}
