package linuxrt

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRootfsCacheDir is where EnsureBaseRootfs caches the base root file
// system when it is given an empty cache directory.
const DefaultRootfsCacheDir = "/var/cache/phoenix/rootfs/debian-12"

// baseRecipeVersion names the recipe of the base root file system. Change it
// (or the package list or setup script below, which are hashed too) and
// EnsureBaseRootfs builds a new one next to the old.
const baseRecipeVersion = "debian-12-v1"

const debianSuite = "bookworm"

// basePackages are installed on top of debootstrap's minbase variant: roughly
// what a Debian cloud image offers for logging in and provisioning, minus
// cloud-init and python. systemd is the instances' init, as on EC2.
var basePackages = []string{
	"systemd",
	"systemd-sysv",
	"dbus",
	"openssh-server",
	"openssh-sftp-server",
	"sudo",
	"ca-certificates",
	"iproute2",
	"curl",
	"procps",
	"less",
	"vim-tiny",
	"netbase",
	// busybox gives test apps a tiny web server (busybox httpd) and nc.
	"busybox",
}

// baseSetupScript runs with /bin/sh inside the freshly bootstrapped tree
// (chroot). It makes the tree look like Debian's AMIs where that matters:
// user admin with passwordless sudo, no baked-in ssh host keys.
const baseSetupScript = `
set -eu
groups=""
for g in adm dialout cdrom floppy sudo audio dip video plugdev netdev; do
	if getent group "$g" >/dev/null; then groups="${groups:+$groups,}$g"; fi
done
useradd --create-home --shell /bin/bash --groups "$groups" --comment "Debian" admin
usermod --password '*' admin
printf 'admin ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
# Writing /proc/self/loginuid needs CAP_AUDIT_CONTROL, which instances lack.
sed -i -E 's/^session([[:space:]]+)required([[:space:]]+)pam_loginuid\.so/session\1optional\2pam_loginuid.so/' /etc/pam.d/sshd /etc/pam.d/login
# Host keys are generated per instance on its first boot.
rm -f /etc/ssh/ssh_host_*
apt-get clean
rm -rf /var/lib/apt/lists/*
mkdir -p /var/lib/apt/lists/partial
rm -f /etc/resolv.conf /etc/hostname /etc/machine-id
# An empty machine-id, as in Debian's cloud images: systemd makes one at
# the first boot of each instance.
: > /etc/machine-id
: > /etc/resolv.conf
# The instance's console is a log: no login prompt on it. The network is
# configured by the runtime before systemd starts (as EC2's DHCP would).
systemctl mask console-getty.service serial-getty@.service getty@.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
systemctl enable ssh.service >/dev/null 2>&1 || true
echo localhost > /etc/hostname
rm -f /var/log/bootstrap.log /var/log/dpkg.log /var/log/alternatives.log
rm -rf /var/log/apt/* /tmp/* /var/tmp/*
`

// cloudInitStub answers the cloud-init command provisioning scripts
// commonly run ("cloud-init status --wait"). The real work of cloud-init
// (host name, keys, user data, #cloud-config) is done by the instance init,
// which writes bootFinishedFile when the user data has finished.
const cloudInitStub = `#!/bin/sh
# phoenix: stand-in for cloud-init; the instance init and the
# phoenix-user-data unit do its work.
done=/run/phoenix/boot-finished
case "${1:-}" in
status)
	if [ "${2:-}" = --wait ] || [ "${2:-}" = -w ]; then
		while [ ! -e "$done" ]; do printf .; sleep 1; done
		[ -t 1 ] && echo
	fi
	if [ ! -e "$done" ]; then echo "status: running"; exit 0; fi
	if [ "$(cat "$done")" = error ]; then echo "status: error"; exit 1; fi
	echo "status: done" ;;
--version|-v) echo "cloud-init 0 (phoenix stand-in)" ;;
*) echo "cloud-init: phoenix stand-in, nothing to do" >&2 ;;
esac
exit 0
`

func baseRootfsKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n%s\n", baseRecipeVersion, debianSuite,
		strings.Join(basePackages, ","), baseSetupScript, cloudInitStub)
	return baseRecipeVersion + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// EnsureBaseRootfs returns the path of a Debian 12 root file system suitable
// as the base layer of instances, building it first if it is not cached.
//
// The tree is built with debootstrap (installed with apt-get if missing) from
// the Debian mirror the machine's apt sources use (PHOENIX_DEBIAN_MIRROR
// overrides it), in a temporary directory under cacheDir that is renamed into
// place when complete. Later calls find it and return at once. An empty
// cacheDir means DefaultRootfsCacheDir. Progress goes to log (may be nil).
func EnsureBaseRootfs(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	if log == nil {
		log = io.Discard
	}
	if cacheDir == "" {
		cacheDir = DefaultRootfsCacheDir
	}
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", err
	}
	key := baseRootfsKey()
	final := filepath.Join(cacheDir, key)
	if isBuiltRootfs(final) {
		return final, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("linuxrt: building the base rootfs needs root")
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isBuiltRootfs(final) { // built by another process while we waited
		return final, nil
	}
	// Builds that crashed earlier left .build-* directories; we hold the lock,
	// so none of them is in progress.
	if old, _ := filepath.Glob(filepath.Join(cacheDir, ".build-*")); len(old) > 0 {
		for _, d := range old {
			if err := removeAllSafe(d); err != nil {
				return "", fmt.Errorf("linuxrt: removing stale build %s: %w", d, err)
			}
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, ".build-"+key+"-")
	if err != nil {
		return "", err
	}
	defer removeAllSafe(tmp)
	target := filepath.Join(tmp, "rootfs")

	start := time.Now()
	if err := buildRootfs(ctx, target, log); err != nil {
		return "", err
	}
	if err := os.Rename(target, final); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "linuxrt: base rootfs %s built in %s\n", final, time.Since(start).Round(time.Second))
	return final, nil
}

func isBuiltRootfs(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "etc", "phoenix-base-release"))
	return err == nil
}

func buildRootfs(ctx context.Context, target string, log io.Writer) error {
	if _, err := exec.LookPath("debootstrap"); err != nil {
		fmt.Fprintln(log, "linuxrt: installing debootstrap")
		if err := runLogged(ctx, log, "apt-get", "install", "-y", "--no-install-recommends", "debootstrap"); err != nil {
			// The package lists may be missing or stale.
			if err2 := runLogged(ctx, log, "apt-get", "update"); err2 != nil {
				return fmt.Errorf("linuxrt: apt-get update: %w", err2)
			}
			if err := runLogged(ctx, log, "apt-get", "install", "-y", "--no-install-recommends", "debootstrap"); err != nil {
				return fmt.Errorf("linuxrt: installing debootstrap: %w", err)
			}
		}
	}
	mirror, security := debianMirrors()
	fmt.Fprintf(log, "linuxrt: debootstrap %s from %s into %s\n", debianSuite, mirror, target)
	// debootstrap mounts /proc and /sys inside the target while it works. A
	// private mount namespace makes sure those mounts never outlive it.
	args := []string{"--mount", "--propagation", "private", "--",
		"debootstrap", "--variant=minbase", "--components=main",
		"--include=" + strings.Join(basePackages, ","),
		debianSuite, target, mirror}
	if err := runLogged(ctx, log, "unshare", args...); err != nil {
		return fmt.Errorf("linuxrt: debootstrap: %w", err)
	}
	if err := runLogged(ctx, log, "unshare", "--mount", "--propagation", "private", "--",
		"chroot", target, "/bin/sh", "-c", baseSetupScript); err != nil {
		return fmt.Errorf("linuxrt: base rootfs setup: %w", err)
	}
	sources := fmt.Sprintf("deb %s %s main\ndeb %s %s-updates main\n", mirror, debianSuite, mirror, debianSuite)
	if security != "" {
		sources += fmt.Sprintf("deb %s %s-security main\n", security, debianSuite)
	}
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"etc/apt/sources.list", 0o644, sources},
		{"usr/bin/cloud-init", 0o755, cloudInitStub},
		{"etc/phoenix-base-release", 0o644, baseRootfsKey() + "\n"},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(target, f.path), []byte(f.data), f.mode); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Join(target, f.path), f.mode); err != nil {
			return err
		}
	}
	return nil
}

func runLogged(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C.UTF-8")
	cmd.WaitDelay = 10 * time.Second
	return cmd.Run()
}

// debianMirrors finds the Debian archive and security mirrors in the
// machine's apt sources.
func debianMirrors() (mirror, security string) {
	if m := os.Getenv("PHOENIX_DEBIAN_MIRROR"); m != "" {
		return strings.TrimRight(m, "/"), os.Getenv("PHOENIX_DEBIAN_SECURITY_MIRROR")
	}
	var files []string
	files = append(files, "/etc/apt/sources.list")
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append(files, more...)
	for _, f := range files {
		for _, src := range parseAptSources(f) {
			if !strings.Contains(src.uri, "debian") {
				continue
			}
			for _, s := range src.suites {
				switch s {
				case debianSuite:
					if mirror == "" {
						mirror = src.uri
					}
				case debianSuite + "-security", debianSuite + "/updates":
					if security == "" {
						security = src.uri
					}
				}
			}
		}
	}
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	return strings.TrimRight(mirror, "/"), strings.TrimRight(security, "/")
}

type aptSource struct {
	uri    string
	suites []string
}

// parseAptSources reads one-line (.list) and deb822 (.sources) apt source
// files, returning only "deb" entries.
func parseAptSources(path string) []aptSource {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []aptSource
	if strings.HasSuffix(path, ".sources") {
		var cur map[string]string
		flush := func() {
			if cur != nil && strings.Contains(" "+cur["types"]+" ", " deb ") && cur["uris"] != "" {
				for _, u := range strings.Fields(cur["uris"]) {
					out = append(out, aptSource{uri: u, suites: strings.Fields(cur["suites"])})
				}
			}
			cur = nil
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if strings.TrimSpace(line) == "" {
				flush()
				continue
			}
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			if cur == nil {
				cur = map[string]string{}
			}
			cur[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
		flush()
		return out
	}
	if !strings.HasSuffix(path, ".list") {
		return nil
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") { // options
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) > 0 {
				fields = fields[1:]
			}
		}
		if len(fields) < 2 {
			continue
		}
		out = append(out, aptSource{uri: fields[0], suites: []string{fields[1]}})
	}
	return out
}

// lockFile takes an exclusive flock on path, waiting for it until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("linuxrt: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
