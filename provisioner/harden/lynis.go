package harden

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// LynisReport is what Lynis writes to its report file (lynis-report.dat):
// the hardening index and the findings, each "TEST-ID|text|...".
type LynisReport struct {
	Version     string
	Index       int
	Warnings    []LynisFinding
	Suggestions []LynisFinding
}

// LynisFinding is one warning or suggestion of a Lynis report.
type LynisFinding struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// ParseLynisReport reads a lynis-report.dat. A report without a
// hardening_index line is an error: Lynis did not finish.
func ParseLynisReport(data []byte) (*LynisReport, error) {
	r := &LynisReport{Index: -1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "hardening_index":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("lynis report: hardening_index %q: %w", v, err)
			}
			r.Index = n
		case "lynis_version":
			r.Version = v
		case "warning[]", "suggestion[]":
			f := strings.Split(v, "|")
			finding := LynisFinding{ID: f[0]}
			if len(f) > 1 {
				finding.Text = f[1]
			}
			if k == "warning[]" {
				r.Warnings = append(r.Warnings, finding)
			} else {
				r.Suggestions = append(r.Suggestions, finding)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lynis report: %w", err)
	}
	if r.Index < 0 {
		return nil, fmt.Errorf("lynis report: no hardening_index (the audit did not finish)")
	}
	return r, nil
}

// FindingIDs are the distinct test ids of the warnings and suggestions,
// sorted.
func (r *LynisReport) FindingIDs() []string {
	seen := map[string]bool{}
	var ids []string
	for _, f := range append(append([]LynisFinding{}, r.Warnings...), r.Suggestions...) {
		if !seen[f.ID] {
			seen[f.ID] = true
			ids = append(ids, f.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

// LynisReason says why a Lynis finding can remain on an image hardened
// with the cis-level1 profile although no control fails for it. The docs
// list these next to the controls, and the audit test fails on any finding
// that has neither a failing control nor a reason here.
type LynisReason struct {
	ID     string
	Topic  string
	Reason string
	// Booted: the finding goes away on a booted instance (a daemon runs,
	// the kernel has the image's settings) and stays only where the test
	// audits a chroot of the image.
	Booted bool
}

// The audit goals of the profiles: what Lynis's hardening index must at
// least be on the image. The audit of a chroot holds baseline to its goal;
// cis-level1 loses there what only a booted instance shows (the image's
// kernel-wide sysctl values, a running auditd and journal: about 12 of
// Lynis's points), so the chroot holds it to LynisChrootFloorCISLevel1
// until the test audits booted instances.
const (
	LynisGoalBaseline         = 70
	LynisGoalCISLevel1        = 80
	LynisChrootFloorCISLevel1 = 76
)

// LastAudit are the figures of the last audit, for the docs; the audit
// test logs the figures it measures next to these.
var LastAudit = struct {
	Stock, Baseline, CISLevel1 int
	Note                       string
}{
	Stock: 56, Baseline: 71, CISLevel1: 76,
	Note: "Last audit: Lynis 3.0.8 (Debian 12's package) on 2026-12-02, images from Debian 12's packages of that day.",
}

// LynisReasons are the findings phoenix-harden leaves on purpose.
var LynisReasons = []LynisReason{
	{ID: "ACCT-9626", Topic: "sysstat accounting", Reason: "Performance accounting is monitoring, not hardening; on AWS CloudWatch collects it. Left to the user."},
	{ID: "ACCT-9628", Topic: "auditd running", Reason: "cis-level1 installs and enables auditd (auditd-installed, auditd-enabled); Lynis looks for a running daemon.", Booted: true},
	{ID: "AUTH-9284", Topic: "locked accounts", Reason: "The locked account is Debian's cloud login user (admin): no password, it logs in with the instance's key pair. Removing it locks users out."},
	{ID: "BOOT-5180", Topic: "runlevel and startup services", Reason: "Read from the running init.", Booted: true},
	{ID: "BOOT-5264", Topic: "systemd service sandboxing", Reason: "systemd-analyze security needs a running systemd, and sandboxing each service belongs to the units of the image's applications. Left to the user.", Booted: true},
	{ID: "DEB-0810", Topic: "apt-listbugs", Reason: "Phoenix servers are never upgraded in place: apt runs at bake time only, without a terminal (updates-applied)."},
	{ID: "DEB-0811", Topic: "apt-listchanges", Reason: "As DEB-0810: no interactive upgrades on a phoenix server."},
	{ID: "DEB-0831", Topic: "needrestart", Reason: "Nothing is upgraded on a running phoenix server, so no daemon runs old libraries; a new image replaces it."},
	{ID: "DEB-0880", Topic: "fail2ban", Reason: "Password logins are off (ssh-password-authentication) and security groups limit who reaches SSH. Left to the user."},
	{ID: "FILE-6310", Topic: "separate /home, /tmp, /var", Reason: "Partitions are the volume layout of the launch template and the builder (block device mappings), not files of the image; Lynis reads the live mount list.", Booted: true},
	{ID: "HRDN-7230", Topic: "malware scanner", Reason: "AIDE (cis-level1) checks the image's files against the image as baked; a malware scanner is a policy choice left to the user."},
	{ID: "KRNL-5788", Topic: "kernel image missing", Reason: "The sandbox's Debian image has no kernel (its instances share the host's); an EC2 image has /boot/vmlinuz."},
	{ID: "KRNL-6000", Topic: "sysctl values", Reason: "sysctl-kernel-hardening and the other sysctl controls persist the values; the audit of a chroot (and the sandbox's instances, which share the host's kernel) reads the host kernel's kernel-wide values.", Booted: true},
	{ID: "LOGG-2130", Topic: "syslog daemon", Reason: "The image logs to the journal (journald-persistent), which Lynis only finds running.", Booted: true},
	{ID: "LOGG-2138", Topic: "klogd", Reason: "The journal reads the kernel log; with systemd-journald running, Lynis does not look for klogd.", Booted: true},
	{ID: "LYNIS", Topic: "Lynis release age", Reason: "About the auditor (Debian 12's lynis package), not the image."},
	{ID: "NAME-4028", Topic: "DNS domain", Reason: "Set per instance at boot (DHCP options of the VPC), not in the image.", Booted: true},
	{ID: "NAME-4404", Topic: "host name in /etc/hosts", Reason: "Each instance gets its name and address at boot (cloud-init); an image must not carry one.", Booted: true},
	{ID: "PKGS-7370", Topic: "debsums", Reason: "AIDE (cis-level1) checks all files against the image as baked, package files included."},
	{ID: "PKGS-7394", Topic: "apt-show-versions", Reason: "An image's patch level is its build: updates-applied installs every update at bake time, and new images replace servers."},
	{ID: "PKGS-7420", Topic: "automatic upgrades", Reason: "Phoenix servers are never patched in place, only replaced by a newer image (updates-applied at bake time)."},
	{ID: "TIME-3104", Topic: "running time daemon", Reason: "timesync-chrony installs and enables chrony; Lynis looks for a running daemon.", Booted: true},
	{ID: "TOOL-5002", Topic: "automation tools", Reason: "Images are built by Packer; no configuration management agent runs on a phoenix server."},
}

// lynisReason returns the reason for a finding, or nil.
func lynisReason(id string) *LynisReason {
	for i := range LynisReasons {
		if LynisReasons[i].ID == id {
			return &LynisReasons[i]
		}
	}
	return nil
}
