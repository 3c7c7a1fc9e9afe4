package linuxrt

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An instance boots as an EC2 instance of Debian's cloud image does:
// systemd is PID 1, a unit enabled in the image starts at boot and serves
// on 0.0.0.0, systemctl works, the user data runs once as a unit with its
// output on the console, the console is the boot log, and Stop shuts the
// system down cleanly.
func TestInstanceBootsSystemd(t *testing.T) {
	requireE2E(t)
	rt, _ := newTestRuntime(t)
	signer, pub := newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// An image layer with an app and its unit, enabled as
	// `systemctl enable web` leaves it.
	layer := t.TempDir()
	files := map[string]string{
		"usr/local/bin/web":              "#!/bin/sh\nmkdir -p /run/web\necho \"web on $(hostname)\" > /run/web/index.html\nexec busybox httpd -f -p 0.0.0.0:8080 -h /run/web\n",
		"etc/systemd/system/web.service": "[Unit]\nDescription=Test web app\nAfter=network.target\n\n[Service]\nExecStart=/usr/local/bin/web\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n",
	}
	for p, data := range files {
		full := filepath.Join(layer, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wants := filepath.Join(layer, "etc/systemd/system/multi-user.target.wants")
	os.MkdirAll(wants, 0o755)
	if err := os.Symlink("/etc/systemd/system/web.service", filepath.Join(wants, "web.service")); err != nil {
		t.Fatal(err)
	}

	userData := "#!/bin/sh\necho \"user data ran as $(id -un) under $(ps -o comm= -p 1)\"\n"
	inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-systemd", IP: testIP(40), AuthorizedKey: pub, UserData: []byte(userData), Layers: []string{layer}})
	if err != nil {
		t.Fatal(err)
	}
	spec := inst.Spec()
	c, _ := sshTo(t, ctx, inst, signer)
	defer c.Close()
	if got := mustRun(t, c, "ps -o comm= -p 1"); got != "systemd" {
		t.Errorf("PID 1 is %q, want systemd", got)
	}
	if got, err := run(c, "systemctl is-system-running --wait"); strings.TrimSpace(got) != "running" {
		failed, _ := run(c, "systemctl --failed --no-pager; sudo journalctl -b -p warning --no-pager | tail -40")
		t.Errorf("systemctl is-system-running --wait: %q, %v\n%s", got, err, failed)
	}
	if got := mustRun(t, c, "cloud-init status --wait"); !strings.HasSuffix(got, "status: done") {
		t.Errorf("cloud-init status --wait: %q", got)
	}
	// What templates wait for: cloud-init's mark of a finished boot.
	if out, err := run(c, "test -f /var/lib/cloud/instance/boot-finished && readlink /var/lib/cloud/instance"); err != nil || strings.TrimSpace(out) != "/var/lib/cloud/instances/i-systemd" {
		t.Errorf("/var/lib/cloud/instance/boot-finished: %q, %v", out, err)
	}
	web := "http://" + spec.IP + ":8080/"
	if got := httpGet(t, web, time.Minute); got != "web on "+spec.Hostname {
		t.Errorf("GET %s: %q", web, got)
	}
	// systemctl in a provisioner's shell.
	mustRun(t, c, "sudo systemctl stop web")
	if got := mustRun(t, c, "systemctl is-active web || true"); got != "inactive" {
		t.Errorf("after systemctl stop: %q", got)
	}
	mustRun(t, c, "sudo systemctl start web")
	if got := httpGet(t, web, time.Minute); got != "web on "+spec.Hostname {
		t.Errorf("GET %s after systemctl start: %q", web, got)
	}
	c.Close()
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	console := readFile(spec.ConsoleLog)
	for _, want := range []string{
		"Welcome to Debian GNU/Linux 12 (bookworm)!",
		"Started ssh.service",
		"Started web.service",
		"user data ran as root under systemd",
		"user data script finished (status 0)",
		"Reached target poweroff.target",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", console)
	}

	// Booted again: the unit starts again, the user data does not run.
	inst, err = rt.Boot(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, web, time.Minute); got != "web on "+spec.Hostname {
		t.Errorf("GET %s after a restart: %q", web, got)
	}
	c, _ = sshTo(t, ctx, inst, signer)
	if got := mustRun(t, c, "cloud-init status --wait"); got != "status: done" {
		t.Errorf("second boot: cloud-init status --wait: %q", got)
	}
	// A unit that does not stop: the instance is killed after StopTimeout.
	mustRun(t, c, `sudo sh -c 'printf "[Service]\nExecStart=/bin/sleep infinity\nExecStop=/bin/sleep infinity\nTimeoutStopSec=infinity\n" > /run/systemd/system/hang.service && systemctl daemon-reload && systemctl start hang'`)
	c.Close()
	old := StopTimeout
	StopTimeout = 2 * time.Second
	defer func() { StopTimeout = old }()
	stopStart := time.Now()
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the hung instance stopped after %s", time.Since(stopStart).Round(time.Millisecond))
	if strings.Contains(readFile(spec.ConsoleLog)[len(console):], "Powering off.") {
		t.Errorf("the hung instance powered off cleanly: the unit did not hang")
	}
	if inst.Running() {
		t.Errorf("a hung instance still runs after Stop")
	}
	if strings.Count(readFile(spec.ConsoleLog), "user data ran as root") != 1 {
		t.Errorf("the user data ran more than once")
	}
}

// httpGet polls url until it answers 200 or timeout passes, and returns
// the trimmed body.
func httpGet(t *testing.T, url string, timeout time.Duration) string {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return strings.TrimSpace(string(b))
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("GET %s: %s", url, last)
	return ""
}
