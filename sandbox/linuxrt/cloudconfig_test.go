package linuxrt

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseYAMLSubset(t *testing.T) {
	doc := `#cloud-config
# a comment
write_files:
  - path: /etc/app.conf   # trailing comment
    permissions: '0600'
    content: |
      port=8080
        indented # kept
      last
  - path: /etc/b64
    encoding: b64
    content: aGVsbG8K
runcmd:
- echo "one # two"
- [sh, -c, 'echo it''s']
packages: [nginx, "curl"]
users:
  - default
  - name: deploy
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - ssh-ed25519 AAAA deploy@ci
folded: >
  a
  b
`
	got, err := parseYAMLSubset(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"write_files": []any{
			map[string]any{"path": "/etc/app.conf", "permissions": "0600", "content": "port=8080\n  indented # kept\nlast\n"},
			map[string]any{"path": "/etc/b64", "encoding": "b64", "content": "aGVsbG8K"},
		},
		"runcmd":   []any{`echo "one # two"`, []any{"sh", "-c", "echo it's"}},
		"packages": []any{"nginx", "curl"},
		"users": []any{"default", map[string]any{
			"name": "deploy", "sudo": "ALL=(ALL) NOPASSWD:ALL",
			"ssh_authorized_keys": []any{"ssh-ed25519 AAAA deploy@ci"},
		}},
		"folded": "a b\n",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parsed:\n%#v\nwant:\n%#v", got, want)
	}
	for _, bad := range []string{"key: [a, b", "key: \"open", "a: 1\n  b: 2\n"} {
		if _, err := parseYAMLSubset(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

// The script a #cloud-config document becomes writes its files, runs its
// commands in order and reports a failing one, run by the real sh against
// a scratch directory.
func TestCloudConfigScript(t *testing.T) {
	dir := t.TempDir()
	doc := `#cloud-config
write_files:
  - path: ` + dir + `/etc/app.conf
    content: |
      port=8080
    permissions: '0640'
  - path: ` + dir + `/etc/app.conf
    append: true
    content: "more\n"
  - path: ` + dir + `/late
    defer: true
    permissions: '0600'
    content: deferred
runcmd:
  - echo ran > ` + dir + `/ran
  - [sh, -c, "echo $0 >> ` + dir + `/ran", "it's quoted"]
  - false
bootcmd:
  - echo never
`
	script, err := cloudConfigScript([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		// chown root:root needs root; the rendering is still checked.
		script = strings.ReplaceAll(script, "chown 'root:root'", "true")
	}
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("script exit: %v (want 1, from the failing runcmd)\n%s", err, out)
	}
	if !strings.Contains(string(out), "cloud-init: key bootcmd is not handled here; ignored") {
		t.Errorf("unhandled key not reported:\n%s", out)
	}
	for name, want := range map[string]string{"etc/app.conf": "port=8080\nmore\n", "late": "deferred", "ran": "ran\nit's quoted\n"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
	// Each entry sets its mode, the appending one too (default 0644), as
	// cloud-init does.
	for name, want := range map[string]os.FileMode{"etc/app.conf": 0o644, "late": 0o600} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s mode: %v %v, want %v", name, fi.Mode(), err, want)
		}
	}
	for _, bad := range []string{
		"#cloud-config\nwrite_files:\n  - path: relative\n",
		"#cloud-config\nwrite_files:\n  - path: /x\n    permissions: rw\n",
		"#cloud-config\nusers:\n  - name: Bad Name\n",
		"#cloud-config\nruncmd: echo\n",
	} {
		if _, err := cloudConfigScript([]byte(bad)); err == nil {
			t.Errorf("%q rendered without error", bad)
		}
	}
}
