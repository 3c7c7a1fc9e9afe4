package linuxrt

import (
	"context"
	"strings"
	"testing"
	"time"
)

// #cloud-config user data on a booting instance: files, a user with sudo
// and a key, a package that is in the image, commands in order; output on
// the console; "cloud-init status --wait" returns once it is done; a
// second boot runs none of it again.
func TestInstanceCloudConfig(t *testing.T) {
	requireE2E(t)
	rt, _ := newTestRuntime(t)
	signer, pub := newKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	userData := `#cloud-config
write_files:
  - path: /etc/app/app.conf
    permissions: '0600'
    content: |
      listen=0.0.0.0:8080
users:
  - default
  - name: deploy
    groups: [adm]
    sudo: ALL=(ALL) NOPASSWD:ALL
    shell: /bin/bash
    ssh_authorized_keys:
      - ` + pub + `
packages:
  - curl
runcmd:
  - sleep 2
  - [sh, -c, 'echo "runcmd ran as $(id -un)" >> /var/log/app-setup.log']
`
	inst, err := rt.Boot(ctx, InstanceSpec{ID: "i-cloudconfig", IP: testIP(21), AuthorizedKey: pub, UserData: []byte(userData)})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := sshTo(t, ctx, inst, signer)
	defer c.Close()
	if got := mustRun(t, c, "cloud-init status --wait"); !strings.HasSuffix(got, "status: done") {
		t.Errorf("cloud-init status --wait: %q", got)
	}
	for cmd, want := range map[string]string{
		"sudo stat -c '%a %U' /etc/app/app.conf && sudo cat /etc/app/app.conf": "600 root\nlisten=0.0.0.0:8080",
		"id -nG deploy":                         "deploy adm",
		"sudo -u deploy sudo -n id -un":         "root",
		"sudo cat /var/log/app-setup.log":       "runcmd ran as root",
		"sudo cat ~deploy/.ssh/authorized_keys": strings.TrimSpace(pub),
	} {
		if got := mustRun(t, c, cmd); got != want {
			t.Errorf("%s: %q, want %q", cmd, got, want)
		}
	}
	console := readFile(inst.Spec().ConsoleLog)
	for _, want := range []string{"user data is #cloud-config", "cloud-init: write_files: /etc/app/app.conf", "cloud-init: users: deploy", "cloud-init: runcmd", "user data script finished (status 0)"} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, console)
		}
	}
	c.Close()
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	inst, err = rt.Boot(ctx, InstanceSpec{ID: "i-cloudconfig", IP: testIP(21), AuthorizedKey: pub, UserData: []byte(userData)})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = sshTo(t, ctx, inst, signer)
	if got := mustRun(t, c, "cloud-init status --wait && sudo cat /var/log/app-setup.log"); got != "status: done\nruncmd ran as root" {
		t.Errorf("second boot: %q (the user data must not run again)", got)
	}
	c.Close()

	// A document that cannot be read is reported, and status says error.
	bad, err := rt.Boot(ctx, InstanceSpec{ID: "i-badconfig", IP: testIP(22), AuthorizedKey: pub, UserData: []byte("#cloud-config\nruncmd: [unclosed\n")})
	if err != nil {
		t.Fatal(err)
	}
	c, _ = sshTo(t, ctx, bad, signer)
	defer c.Close()
	if out, err := run(c, "cloud-init status --wait"); err == nil || !strings.Contains(out, "status: error") {
		t.Errorf("cloud-init status with a broken #cloud-config: %q, %v", out, err)
	}
	waitConsole(t, bad.Spec().ConsoleLog, "user data: #cloud-config: line 2", 10*time.Second)
}
