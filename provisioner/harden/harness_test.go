package harden

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/immutable-infra/packer-plugin-phoenix/internal/testenv"
)

// fixtureRoot makes a small Debian 12 tree for running controls with
// ROOT pointing at it: nothing outside the tree is read or written.
func fixtureRoot(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
		"etc/passwd":     "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/sh\n",
		"etc/group":      "root:x:0:\nshadow:x:42:\nadmin:x:1000:\n",
		"etc/shadow":     "root:*:19000:0:99999:7:::\nadmin:!:19000:0:99999:7:::\n",
		"etc/gshadow":    "root:*::\nshadow:*::\n",
		"etc/login.defs": "MAIL_DIR /var/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t7\nUMASK\t\t022\nENCRYPT_METHOD SHA512\n",
		"etc/ssh/sshd_config": "# Debian's layout: drop-ins first.\nInclude /etc/ssh/sshd_config.d/*.conf\n\n" +
			"KbdInteractiveAuthentication no\nUsePAM yes\nX11Forwarding yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
		"etc/machine-id":                   "0123456789abcdef0123456789abcdef\n",
		"var/lib/dpkg/status":              "Package: telnet\nStatus: install ok installed\nVersion: 1\n\nPackage: nis\nStatus: deinstall ok config-files\nVersion: 1\n\n",
		"proc/sys/net/ipv4/ip_forward":     "1\n",
		"usr/lib/sysctl.d/50-default.conf": "net.ipv4.conf.all.rp_filter = 2\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(root, name), content)
	}
	for _, d := range []string{"etc/ssh/sshd_config.d", "etc/sysctl.d", "etc/systemd", "etc/sudoers.d", "root", "home/admin/.ssh", "tmp", "var/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// allControls is every embedded control (baseline, cis-level1, cleanup).
func allControls(t *testing.T) *ControlSet {
	t.Helper()
	set, err := LoadProfile("cis-level1")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := LoadProfile("cleanup")
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Merge(cl); err != nil {
		t.Fatal(err)
	}
	return set
}

func defaultParams(t testing.TB) map[string]string {
	t.Helper()
	ps, err := AllParams()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.Name] = p.Default
	}
	return m
}

type runOpts struct {
	params  map[string]string
	waivers map[string]string
	verify  bool // mode verify: the tree must be left as it was
	env     []string
	phase   string
}

// runControls renders a script with the named controls (embedded or
// extra) and runs it with dash under ROOT=root; it returns the report.
func runControls(t *testing.T, root string, controls []*Control, o runOpts) (*Report, string) {
	t.Helper()
	testenv.RequireRoot(t) // apply sets root ownership, as on an instance
	dash := testenv.LookPath(t, "dash", "/usr/bin/dash", "/bin/dash")
	params := defaultParams(t)
	for k, v := range o.params {
		params[k] = v
	}
	phase := o.phase
	if phase == "" {
		phase = PhaseApply
	}
	in := &ScriptInput{Profile: "test", Phase: phase, Version: "test", Controls: controls, Waivers: o.waivers, Params: params}
	if o.verify {
		in.Mode = ModeVerify
	}
	s, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "tmp", "phoenix-harden-test.sh")
	writeFile(t, script, s)
	var before map[string]string
	if o.verify {
		before = treeState(t, root)
	}
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(dash, script, out)
	cmd.Env = append([]string{"PHOENIX_ROOT=" + root, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, o.env...)
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, output)
	}
	if _, err := os.Stat(script); !os.IsNotExist(err) {
		t.Errorf("the script did not remove itself: %v", err)
	}
	data := readFile(t, out)
	if img := readFile(t, filepath.Join(root, strings.TrimPrefix(in.ReportPath(), "/"))); img != data {
		t.Errorf("the copy at %s differs from the report", in.ReportPath())
	}
	if o.verify {
		after := treeState(t, root)
		delete(before, "tmp/phoenix-harden-test.sh") // the script, which removes itself
		if diff := diffTree(before, after); diff != "" {
			t.Errorf("mode verify changed the tree:\n%s", diff)
		}
	}
	r, err := ParseReport([]byte(data))
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	return r, string(output)
}

// treeState describes every file under root outside run/ (a tmpfs on a
// real system): directories by mode, symlinks by target, regular files by
// mode, size, modification time and content, others by mode and time.
func treeState(t testing.TB, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "run" && d.IsDir() {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			state[rel] = fmt.Sprintf("dir %v", fi.Mode())
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(path)
			state[rel] = "symlink " + target
		case !fi.Mode().IsRegular(): // devices, fifos, sockets: never read
			state[rel] = fmt.Sprintf("%v %s", fi.Mode(), fi.ModTime().Format(time.RFC3339Nano))
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			state[rel] = fmt.Sprintf("%v %d %s %x", fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}

// diffTree lists what was added, removed or changed between two states.
func diffTree(before, after map[string]string) string {
	var lines []string
	for p, b := range before {
		if a, ok := after[p]; !ok {
			lines = append(lines, "removed "+p)
		} else if a != b {
			lines = append(lines, fmt.Sprintf("changed %s: %s -> %s", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			lines = append(lines, "added "+p)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func pick(t *testing.T, set *ControlSet, ids ...string) []*Control {
	t.Helper()
	var out []*Control
	for _, id := range ids {
		c := set.Lookup(id)
		if c == nil {
			t.Fatalf("no control %q", id)
		}
		out = append(out, c)
	}
	return out
}

func control(t *testing.T, r *Report, id string) ReportControl {
	t.Helper()
	for _, c := range r.Controls() {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("report has no control %q", id)
	return ReportControl{}
}

func wantStatus(t *testing.T, r *Report, id, status string, evidence ...string) ReportControl {
	t.Helper()
	c := control(t, r, id)
	if c.Status != status {
		t.Errorf("%s: status %s, want %s; evidence:\n%s\napply:\n%s", id, c.Status, status, c.Evidence(), c.ApplyLog)
	}
	for _, e := range evidence {
		if !strings.Contains(c.Evidence(), e) {
			t.Errorf("%s: evidence lacks %q:\n%s", id, e, c.Evidence())
		}
	}
	return c
}

// tableRow is the status, severity and changed columns of a control's
// line in the provisioner's table.
func tableRow(ui, id string) string {
	for _, line := range strings.Split(ui, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[3] == id {
			return strings.Join(f[:3], " ")
		}
	}
	return ""
}

func copyRaw(m map[string]interface{}) map[string]interface{} {
	out := make(map[string]interface{}, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
