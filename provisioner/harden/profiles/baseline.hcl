# baseline: safe on any server. Nothing here blocks a normal workload:
# settings an application might need (IP forwarding, squashfs for snaps,
# who may log in) are params.
#
# References: cis = CIS Debian Linux 12 Benchmark item numbers (the Ubuntu
# and Amazon Linux benchmarks number these items the same way or close);
# devsec = control ids of dev-sec's InSpec baselines: linux-baseline
# (os-*, sysctl-*, package-*) and ssh-baseline (sshd-*); kspp = the Kernel
# Self Protection Project's recommended settings.
#
# In these heredocs HCL reads "$${" and "%%{" as "${" and "%{".

param "allow_ip_forward" {
  type        = "bool"
  default     = "false"
  description = "Leave IPv4/IPv6 forwarding alone (container and router hosts); the ip-forwarding control is then not applicable."
}

param "install_packages" {
  type        = "bool"
  default     = "true"
  description = "Let controls install packages (auditd) and apply updates. Set false for images built without network access: updates-applied then only checks, and auditd-installed reports an error saying the package is missing."
}

param "ssh_allow_users" {
  default     = ""
  description = "Space-separated AllowUsers for sshd (e.g. \"admin ec2-user\"). Empty: the ssh-allow-users control is not applicable."
}

# ---- SSH daemon ---------------------------------------------------------------

control "ssh-config-permissions" {
  title      = "sshd_config is owned by root and not readable by others"
  severity   = "high"
  references = { cis = ["5.1.1"], devsec = ["sshd-04", "sshd-05"] }
  apply      = <<-EOT
    ph_sshd_present || exit 2
    ph_perm_apply "$PH_SSHD_CONFIG" 0600 root root
    for f in "$ROOT"/etc/ssh/sshd_config.d/*.conf; do
      [ -f "$f" ] && ph_perm_apply "$f" 0600 root root
    done
    exit 0
  EOT
  check      = <<-EOT
    ph_sshd_present || exit 2
    rc=0
    ph_perm_check "$PH_SSHD_CONFIG" 0600 root root || rc=1
    for f in "$ROOT"/etc/ssh/sshd_config.d/*.conf; do
      [ -f "$f" ] && { ph_perm_check "$f" 0600 root root || rc=1; }
    done
    exit $rc
  EOT
}

control "ssh-host-key-permissions" {
  title      = "SSH private host keys are readable by root only"
  severity   = "high"
  references = { cis = ["5.1.2"] }
  apply      = <<-EOT
    ph_sshd_present || exit 2
    for k in "$ROOT"/etc/ssh/ssh_host_*_key; do
      [ -f "$k" ] || continue
      g=$(stat -c %G "$k")
      # Amazon Linux gives the keys to group ssh_keys with mode 0640.
      if [ "$g" = ssh_keys ]; then ph_perm_apply "$k" 0640 root ssh_keys; else ph_perm_apply "$k" 0600 root root; fi
    done
    exit 0
  EOT
  check      = <<-EOT
    ph_sshd_present || exit 2
    rc=0; n=0
    for k in "$ROOT"/etc/ssh/ssh_host_*_key; do
      [ -f "$k" ] || continue
      n=$((n + 1))
      if [ "$(stat -c %G "$k")" = ssh_keys ]; then ph_perm_check "$k" 0640 root ssh_keys || rc=1
      else ph_perm_check "$k" 0600 root root || rc=1; fi
    done
    [ $n -gt 0 ] || echo "no host keys (generated at first boot)"
    exit $rc
  EOT
}

control "ssh-permit-root-login" {
  title      = "SSH root login is disabled"
  severity   = "high"
  references = { cis = ["5.1.20"], devsec = ["sshd-06"] }
  apply      = "ph_sshd_set PermitRootLogin no"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect permitrootlogin no prohibit-password
  EOT
}

control "ssh-password-authentication" {
  title       = "SSH password authentication is disabled"
  description = "The setting cloud-init and hand-written drop-ins most often turn back on; checked on sshd's effective configuration so a later Include cannot hide it."
  severity    = "critical"
  references  = { devsec = ["sshd-27", "sshd-29"] }
  apply       = <<-EOT
    ph_sshd_set PasswordAuthentication no && ph_sshd_set KbdInteractiveAuthentication no
  EOT
  check       = <<-EOT
    ph_sshd_load || exit $?
    rc=0
    ph_sshd_expect passwordauthentication no yes || rc=1
    ph_sshd_expect kbdinteractiveauthentication no yes || rc=1
    exit $rc
  EOT
}

control "ssh-permit-empty-passwords" {
  title      = "SSH refuses accounts with empty passwords"
  severity   = "critical"
  references = { cis = ["5.1.19"], devsec = ["sshd-28"] }
  apply      = "ph_sshd_set PermitEmptyPasswords no"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect permitemptypasswords no no
  EOT
}

control "ssh-hostbased-authentication" {
  title      = "SSH host-based authentication is disabled"
  severity   = "medium"
  references = { cis = ["5.1.10"], devsec = ["sshd-25"] }
  apply      = "ph_sshd_set HostbasedAuthentication no"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect hostbasedauthentication no no
  EOT
}

control "ssh-ignore-rhosts" {
  title      = "SSH ignores .rhosts and .shosts"
  severity   = "medium"
  references = { cis = ["5.1.11"], devsec = ["sshd-23"] }
  apply      = "ph_sshd_set IgnoreRhosts yes"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect ignorerhosts yes yes
  EOT
}

control "ssh-permit-user-environment" {
  title      = "SSH users cannot set environment options"
  severity   = "medium"
  references = { cis = ["5.1.21"], devsec = ["sshd-17"] }
  apply      = "ph_sshd_set PermitUserEnvironment no"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect permituserenvironment no no
  EOT
}

control "ssh-x11-forwarding" {
  title      = "SSH X11 forwarding is disabled"
  severity   = "medium"
  references = { devsec = ["sshd-42"] }
  apply      = "ph_sshd_set X11Forwarding no"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect x11forwarding no no
  EOT
}

control "ssh-max-auth-tries" {
  title      = "SSH allows at most 4 authentication attempts per connection"
  severity   = "medium"
  references = { cis = ["5.1.16"], devsec = ["sshd-19"] }
  apply      = "ph_sshd_set MaxAuthTries 4"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect_max maxauthtries 4 6
  EOT
}

control "ssh-ciphers" {
  title      = "SSH offers no weak ciphers"
  severity   = "medium"
  references = { cis = ["5.1.6"], devsec = ["sshd-01"] }
  apply      = "ph_sshd_set Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect_none ciphers '*-cbc' '3des*' 'arcfour*' 'blowfish*' 'cast128*' 'rijndael*'
  EOT
}

control "ssh-macs" {
  title      = "SSH offers no weak MACs"
  severity   = "medium"
  references = { cis = ["5.1.15"], devsec = ["sshd-03"] }
  apply      = "ph_sshd_set MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect_none macs '*md5*' 'hmac-sha1*' 'umac-64*' '*ripemd*' '*-96*'
  EOT
}

control "ssh-kex" {
  title      = "SSH offers no weak key exchange algorithms"
  severity   = "medium"
  references = { cis = ["5.1.12"], devsec = ["sshd-02"] }
  apply      = "ph_sshd_set KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect_none kexalgorithms 'diffie-hellman-group1-*' 'diffie-hellman-group14-sha1' 'diffie-hellman-group-exchange-sha1' 'gss-*'
  EOT
}

control "ssh-allow-users" {
  title      = "SSH logins are limited to the listed users"
  severity   = "medium"
  references = { cis = ["5.1.4"] }
  params     = ["ssh_allow_users"]
  apply      = <<-EOT
    [ -n "$PARAM_ssh_allow_users" ] || { echo "param ssh_allow_users is empty"; exit 2; }
    ph_sshd_set AllowUsers "$PARAM_ssh_allow_users"
  EOT
  check      = <<-EOT
    [ -n "$PARAM_ssh_allow_users" ] || { echo "param ssh_allow_users is empty"; exit 2; }
    ph_sshd_load || exit $?
    # AllowUsers accumulates across directives: compare the sets.
    set_of() { printf '%s\n' $1 | sort -u | tr '\n' ' '; }
    have=$(set_of "$(ph_sshd_value allowusers)"); want=$(set_of "$PARAM_ssh_allow_users")
    if [ "$have" = "$want" ]; then echo "allowusers $have($PH_SSHD_SRC)"; exit 0; fi
    echo "allowusers is '$${have:-unset}', want '$want' ($PH_SSHD_SRC)"; exit 1
  EOT
}

# ---- kernel parameters ----------------------------------------------------------

control "sysctl-ip-forwarding" {
  title      = "IPv4 and IPv6 forwarding are disabled"
  severity   = "medium"
  references = { cis = ["3.3.1"], devsec = ["sysctl-01", "sysctl-19"] }
  params     = ["allow_ip_forward"]
  apply      = <<-EOT
    if ph_is_true "$PARAM_allow_ip_forward"; then echo "allow_ip_forward = true"; exit 2; fi
    ph_sysctl_apply net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
  EOT
  check      = <<-EOT
    if ph_is_true "$PARAM_allow_ip_forward"; then echo "allow_ip_forward = true"; exit 2; fi
    ph_sysctl_check net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
  EOT
}

control "sysctl-send-redirects" {
  title      = "The host sends no ICMP redirects"
  severity   = "medium"
  references = { cis = ["3.3.2"], devsec = ["sysctl-16"] }
  apply      = "ph_sysctl_apply net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0"
  check      = "ph_sysctl_check net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0"
}

control "sysctl-icmp-bogus-errors" {
  title      = "Bogus ICMP error responses are ignored"
  severity   = "low"
  references = { cis = ["3.3.3"], devsec = ["sysctl-03"] }
  apply      = "ph_sysctl_apply net.ipv4.icmp_ignore_bogus_error_responses=1"
  check      = "ph_sysctl_check net.ipv4.icmp_ignore_bogus_error_responses=1"
}

control "sysctl-icmp-broadcasts" {
  title      = "Broadcast ICMP echo requests are ignored"
  severity   = "low"
  references = { cis = ["3.3.4"], devsec = ["sysctl-04"] }
  apply      = "ph_sysctl_apply net.ipv4.icmp_echo_ignore_broadcasts=1"
  check      = "ph_sysctl_check net.ipv4.icmp_echo_ignore_broadcasts=1"
}

control "sysctl-accept-redirects" {
  title      = "ICMP redirects are not accepted"
  severity   = "medium"
  references = { cis = ["3.3.5"], devsec = ["sysctl-14", "sysctl-20"] }
  apply      = "ph_sysctl_apply net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0"
  check      = "ph_sysctl_check net.ipv4.conf.all.accept_redirects=0 net.ipv4.conf.default.accept_redirects=0 net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.default.accept_redirects=0"
}

control "sysctl-secure-redirects" {
  title      = "Secure ICMP redirects are not accepted"
  severity   = "low"
  references = { cis = ["3.3.6"], devsec = ["sysctl-15"] }
  apply      = "ph_sysctl_apply net.ipv4.conf.all.secure_redirects=0 net.ipv4.conf.default.secure_redirects=0"
  check      = "ph_sysctl_check net.ipv4.conf.all.secure_redirects=0 net.ipv4.conf.default.secure_redirects=0"
}

control "sysctl-rp-filter" {
  title      = "Reverse path filtering is on"
  severity   = "medium"
  references = { cis = ["3.3.7"], devsec = ["sysctl-02"] }
  apply      = "ph_sysctl_apply net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1"
  check      = "ph_sysctl_check net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1"
}

control "sysctl-source-route" {
  title      = "Source-routed packets are not accepted"
  severity   = "medium"
  references = { cis = ["3.3.8"], devsec = ["sysctl-13"] }
  apply      = "ph_sysctl_apply net.ipv4.conf.all.accept_source_route=0 net.ipv4.conf.default.accept_source_route=0 net.ipv6.conf.all.accept_source_route=0 net.ipv6.conf.default.accept_source_route=0"
  check      = "ph_sysctl_check net.ipv4.conf.all.accept_source_route=0 net.ipv4.conf.default.accept_source_route=0 net.ipv6.conf.all.accept_source_route=0 net.ipv6.conf.default.accept_source_route=0"
}

control "sysctl-log-martians" {
  title      = "Packets with impossible addresses are logged"
  severity   = "low"
  references = { cis = ["3.3.9"], devsec = ["sysctl-17"] }
  apply      = "ph_sysctl_apply net.ipv4.conf.all.log_martians=1 net.ipv4.conf.default.log_martians=1"
  check      = "ph_sysctl_check net.ipv4.conf.all.log_martians=1 net.ipv4.conf.default.log_martians=1"
}

control "sysctl-tcp-syncookies" {
  title      = "TCP SYN cookies are on"
  severity   = "medium"
  references = { cis = ["3.3.10"], devsec = ["sysctl-11"] }
  apply      = "ph_sysctl_apply net.ipv4.tcp_syncookies=1"
  check      = "ph_sysctl_check net.ipv4.tcp_syncookies=1"
}

control "sysctl-aslr" {
  title      = "Address space layout randomization is full"
  severity   = "high"
  references = { cis = ["1.5.1"], devsec = ["sysctl-32"] }
  apply      = "ph_sysctl_apply kernel.randomize_va_space=2"
  check      = "ph_sysctl_check kernel.randomize_va_space=2"
}

control "sysctl-protected-links" {
  title      = "Hard and symbolic link protections are on"
  severity   = "medium"
  references = { devsec = ["sysctl-34"] }
  apply      = "ph_sysctl_apply fs.protected_hardlinks=1 fs.protected_symlinks=1"
  check      = "ph_sysctl_check fs.protected_hardlinks=1 fs.protected_symlinks=1"
}

control "sysctl-dmesg-restrict" {
  title      = "Only privileged users read the kernel log"
  severity   = "low"
  references = { kspp = ["kernel.dmesg_restrict"] }
  apply      = "ph_sysctl_apply kernel.dmesg_restrict=1"
  check      = "ph_sysctl_check kernel.dmesg_restrict=1"
}

control "core-dumps-restricted" {
  title      = "setuid programs do not dump core and core dumps are limited"
  severity   = "medium"
  references = { cis = ["1.5.3"], devsec = ["sysctl-31a"] }
  apply      = <<-EOT
    ph_sysctl_apply fs.suid_dumpable=0 || exit 1
    ph_set_kv "$ROOT/etc/security/limits.d/99-phoenix-hardening.conf" "* hard core" 0 " "
  EOT
  check      = <<-EOT
    rc=0
    ph_sysctl_check fs.suid_dumpable=0 || rc=1
    v=$(cat "$ROOT"/etc/security/limits.conf "$ROOT"/etc/security/limits.d/*.conf 2>/dev/null |
      awk '$1 == "*" && $2 == "hard" && $3 == "core" { v = $4 } END { print v }')
    if [ "$v" = 0 ]; then echo "* hard core 0 in limits"; else echo "no '* hard core 0' in /etc/security/limits*, have '$v'"; rc=1; fi
    exit $rc
  EOT
}

# ---- filesystem kernel modules (never vfat: EFI boots from it) ------------------

control "kmod-cramfs" {
  title      = "The cramfs filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.1"], devsec = ["os-10"] }
  apply      = "ph_module_disable_apply cramfs"
  check      = "ph_module_disable_check cramfs"
}

control "kmod-freevxfs" {
  title      = "The freevxfs filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.2"], devsec = ["os-10"] }
  apply      = "ph_module_disable_apply freevxfs"
  check      = "ph_module_disable_check freevxfs"
}

control "kmod-hfs" {
  title      = "The hfs filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.3"], devsec = ["os-10"] }
  apply      = "ph_module_disable_apply hfs"
  check      = "ph_module_disable_check hfs"
}

control "kmod-hfsplus" {
  title      = "The hfsplus filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.4"], devsec = ["os-10"] }
  apply      = "ph_module_disable_apply hfsplus"
  check      = "ph_module_disable_check hfsplus"
}

control "kmod-jffs2" {
  title      = "The jffs2 filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.5"], devsec = ["os-10"] }
  apply      = "ph_module_disable_apply jffs2"
  check      = "ph_module_disable_check jffs2"
}

control "kmod-udf" {
  title      = "The udf filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.7"], devsec = ["os-10"] }
  apply      = "ph_module_disable_apply udf"
  check      = "ph_module_disable_check udf"
}

# ---- file permissions ------------------------------------------------------------

control "perms-passwd" {
  title      = "/etc/passwd and its backup are 0644 root:root"
  severity   = "high"
  references = { cis = ["7.1.1", "7.1.2"], devsec = ["os-03"] }
  apply      = <<-EOT
    ph_perm_apply "$ROOT/etc/passwd" 0644 root root && ph_perm_apply "$ROOT/etc/passwd-" 0644 root root
  EOT
  check      = <<-EOT
    rc=0
    ph_perm_check "$ROOT/etc/passwd" 0644 root root || rc=1
    ph_perm_check "$ROOT/etc/passwd-" 0644 root root || rc=1
    exit $rc
  EOT
}

control "perms-group" {
  title      = "/etc/group and its backup are 0644 root:root"
  severity   = "high"
  references = { cis = ["7.1.3", "7.1.4"] }
  apply      = <<-EOT
    ph_perm_apply "$ROOT/etc/group" 0644 root root && ph_perm_apply "$ROOT/etc/group-" 0644 root root
  EOT
  check      = <<-EOT
    rc=0
    ph_perm_check "$ROOT/etc/group" 0644 root root || rc=1
    ph_perm_check "$ROOT/etc/group-" 0644 root root || rc=1
    exit $rc
  EOT
}

control "perms-shadow" {
  title      = "/etc/shadow and /etc/gshadow (and backups) are not readable by others"
  severity   = "critical"
  references = { cis = ["7.1.5", "7.1.6", "7.1.7", "7.1.8"], devsec = ["os-02"] }
  apply      = <<-EOT
    # Debian and Ubuntu give group shadow read access (0640); Amazon Linux uses 0000.
    g=root; grep -q '^shadow:' "$ROOT/etc/group" 2>/dev/null && g=shadow
    m=0640; [ "$PH_FAMILY" = rpm ] && m=0000
    for f in shadow shadow- gshadow gshadow-; do
      ph_perm_apply "$ROOT/etc/$f" $m root $g || exit 1
    done
  EOT
  check      = <<-EOT
    rc=0
    for f in shadow shadow- gshadow gshadow-; do
      ph_perm_check "$ROOT/etc/$f" 0640 root 'root|shadow' || rc=1
    done
    exit $rc
  EOT
}

control "perms-cron" {
  title      = "crontab and cron directories are root's only"
  severity   = "medium"
  references = { cis = ["2.4.1.2", "2.4.1.3", "2.4.1.4", "2.4.1.5", "2.4.1.6", "2.4.1.7"] }
  apply      = <<-EOT
    [ -f "$ROOT/etc/crontab" ] && { ph_perm_apply "$ROOT/etc/crontab" 0600 root root || exit 1; }
    for d in cron.hourly cron.daily cron.weekly cron.monthly cron.d; do
      [ -d "$ROOT/etc/$d" ] && { ph_perm_apply "$ROOT/etc/$d" 0700 root root || exit 1; }
    done
    exit 0
  EOT
  check      = <<-EOT
    [ -e "$ROOT/etc/crontab" ] || [ -d "$ROOT/etc/cron.d" ] || { echo "cron is not installed"; exit 2; }
    rc=0
    [ -f "$ROOT/etc/crontab" ] && { ph_perm_check "$ROOT/etc/crontab" 0600 root root || rc=1; }
    for d in cron.hourly cron.daily cron.weekly cron.monthly cron.d; do
      [ -d "$ROOT/etc/$d" ] && { ph_perm_check "$ROOT/etc/$d" 0700 root root || rc=1; }
    done
    exit $rc
  EOT
}

# ---- accounts ----------------------------------------------------------------------

control "accounts-uid0-only-root" {
  title      = "root is the only account with UID 0"
  severity   = "critical"
  references = { cis = ["5.4.2.1"], devsec = ["os-07"] }
  check      = <<-EOT
    u=$(awk -F: '$3 == 0 { printf "%s ", $1 }' "$ROOT/etc/passwd")
    echo "UID 0: $u"
    [ "$u" = "root " ]
  EOT
}

control "accounts-no-empty-passwords" {
  title      = "No account has an empty password"
  severity   = "critical"
  references = { cis = ["7.2.2"] }
  check      = <<-EOT
    [ -r "$ROOT/etc/shadow" ] || { echo "/etc/shadow is not readable"; exit 3; }
    u=$(awk -F: '$2 == "" { printf " %s", $1 }' "$ROOT/etc/shadow")
    if [ -n "$u" ]; then echo "empty password:$u"; exit 1; fi
    echo "no empty password field in /etc/shadow"
  EOT
}

# ---- sudo ----------------------------------------------------------------------------

control "sudo-use-pty" {
  title      = "sudo runs commands in a pseudo-terminal"
  severity   = "medium"
  references = { cis = ["5.2.2"] }
  apply      = <<-EOT
    [ -d "$ROOT/etc/sudoers.d" ] || { echo "sudo is not installed"; exit 2; }
    f="$ROOT/etc/sudoers.d/00-phoenix-hardening"
    [ -f "$f" ] && cp -p "$f" "$PH_TMP/sudoers.bak"
    ph_set_kv "$f" "Defaults use_pty" "" "" || exit 1
    chmod 0440 "$f"
    if ph_live && ph_has visudo && ! visudo -cqf "$f"; then
      if [ -f "$PH_TMP/sudoers.bak" ]; then cat "$PH_TMP/sudoers.bak" >"$f"; else rm -f "$f"; fi
      echo "visudo rejected $f; restored"; exit 1
    fi
  EOT
  check      = <<-EOT
    [ -d "$ROOT/etc/sudoers.d" ] || { echo "sudo is not installed"; exit 2; }
    if grep -hEq '^[[:space:]]*Defaults([[:space:]]+|.*,)use_pty' "$ROOT/etc/sudoers" "$ROOT"/etc/sudoers.d/* 2>/dev/null; then
      echo "Defaults use_pty set"
    else
      echo "Defaults use_pty not found in /etc/sudoers*"; exit 1
    fi
    if grep -hEq '^[[:space:]]*Defaults.*!use_pty' "$ROOT/etc/sudoers" "$ROOT"/etc/sudoers.d/* 2>/dev/null; then
      echo "but !use_pty is also set"; exit 1
    fi
  EOT
}

control "sudo-logfile" {
  title      = "sudo keeps its own log file"
  severity   = "low"
  references = { cis = ["5.2.3"] }
  apply      = <<-EOT
    [ -d "$ROOT/etc/sudoers.d" ] || { echo "sudo is not installed"; exit 2; }
    f="$ROOT/etc/sudoers.d/00-phoenix-hardening"
    [ -f "$f" ] && cp -p "$f" "$PH_TMP/sudoers.bak"
    ph_set_kv "$f" "Defaults logfile" '"/var/log/sudo.log"' "=" || exit 1
    chmod 0440 "$f"
    if ph_live && ph_has visudo && ! visudo -cqf "$f"; then
      if [ -f "$PH_TMP/sudoers.bak" ]; then cat "$PH_TMP/sudoers.bak" >"$f"; else rm -f "$f"; fi
      echo "visudo rejected $f; restored"; exit 1
    fi
  EOT
  check      = <<-EOT
    [ -d "$ROOT/etc/sudoers.d" ] || { echo "sudo is not installed"; exit 2; }
    l=$(grep -hE '^[[:space:]]*Defaults([[:space:]]+|.*,)logfile[[:space:]]*=' "$ROOT/etc/sudoers" "$ROOT"/etc/sudoers.d/* 2>/dev/null | tail -n 1)
    [ -n "$l" ] || { echo "no Defaults logfile in /etc/sudoers*"; exit 1; }
    echo "$l"
  EOT
}

# ---- unwanted packages ---------------------------------------------------------------

control "pkg-telnet" {
  title      = "The telnet client and server are not installed"
  severity   = "high"
  references = { cis = ["2.2.4"], devsec = ["package-02"] }
  apply      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_apply telnet inetutils-telnet telnetd inetutils-telnetd ;; *) ph_pkg_absent_apply telnet telnet-server ;; esac
  EOT
  check      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_check telnet inetutils-telnet telnetd inetutils-telnetd ;; *) ph_pkg_absent_check telnet telnet-server ;; esac
  EOT
}

control "pkg-rsh" {
  title      = "rsh client and server are not installed"
  severity   = "high"
  references = { cis = ["2.2.2"], devsec = ["package-03"] }
  apply      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_apply rsh-client rsh-redone-client rsh-server rsh-redone-server ;; *) ph_pkg_absent_apply rsh rsh-server ;; esac
  EOT
  check      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_check rsh-client rsh-redone-client rsh-server rsh-redone-server ;; *) ph_pkg_absent_check rsh rsh-server ;; esac
  EOT
}

control "pkg-nis" {
  title      = "NIS client and server are not installed"
  severity   = "high"
  references = { cis = ["2.2.1", "2.1.10"], devsec = ["package-05"] }
  apply      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_apply nis ;; *) ph_pkg_absent_apply ypbind ypserv ;; esac
  EOT
  check      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_check nis ;; *) ph_pkg_absent_check ypbind ypserv ;; esac
  EOT
}

control "pkg-talk" {
  title      = "talk client and server are not installed"
  severity   = "medium"
  references = { cis = ["2.2.3"] }
  apply      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_apply talk talkd inetutils-talk inetutils-talkd ;; *) ph_pkg_absent_apply talk talk-server ;; esac
  EOT
  check      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_check talk talkd inetutils-talk inetutils-talkd ;; *) ph_pkg_absent_check talk talk-server ;; esac
  EOT
}

control "pkg-inetd" {
  title      = "xinetd and inetd are not installed"
  severity   = "high"
  references = { devsec = ["package-01"] }
  apply      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_apply xinetd openbsd-inetd inetutils-inetd ;; *) ph_pkg_absent_apply xinetd ;; esac
  EOT
  check      = <<-EOT
    case $PH_FAMILY in deb) ph_pkg_absent_check xinetd openbsd-inetd inetutils-inetd ;; *) ph_pkg_absent_check xinetd ;; esac
  EOT
}

# ---- journald ---------------------------------------------------------------------------

control "journald-persistent" {
  title      = "journald keeps the journal on disk"
  severity   = "medium"
  references = { cis = ["6.1.2.4"] }
  apply      = <<-EOT
    [ -d "$ROOT/etc/systemd" ] || { echo "systemd is not installed"; exit 2; }
    f="$ROOT/etc/systemd/journald.conf.d/60-phoenix-hardening.conf"
    [ -f "$f" ] || { mkdir -p "$${f%/*}" && printf '[Journal]\n' >"$f"; } || exit 1
    ph_set_kv "$f" Storage persistent "="
  EOT
  check      = "ph_journald_check Storage persistent"
}

control "journald-compress" {
  title      = "journald compresses large journal entries"
  severity   = "low"
  references = { cis = ["6.1.2.3"] }
  apply      = <<-EOT
    [ -d "$ROOT/etc/systemd" ] || { echo "systemd is not installed"; exit 2; }
    f="$ROOT/etc/systemd/journald.conf.d/60-phoenix-hardening.conf"
    [ -f "$f" ] || { mkdir -p "$${f%/*}" && printf '[Journal]\n' >"$f"; } || exit 1
    ph_set_kv "$f" Compress yes "="
  EOT
  check      = "ph_journald_check Compress yes"
}

# ---- updates -------------------------------------------------------------------------------

control "updates-applied" {
  title       = "Every available package update is installed"
  description = "Bake time is when a phoenix server gets its updates. Without network (install_packages = false) the check still reports what the package lists know to be pending."
  severity    = "high"
  references  = { cis = ["1.2.2.1"] }
  params      = ["install_packages"]
  apply       = <<-EOT
    ph_live || { echo "not updating under ROOT"; exit 0; }
    ph_is_true "$PARAM_install_packages" || { echo "install_packages = false: not updating"; exit 0; }
    case $PH_FAMILY in
    deb)
      ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=1 -o Acquire::http::Timeout=20 update || { echo "apt-get update failed (no network?)"; exit 1; }
      n=$(apt-get -s upgrade 2>/dev/null | grep -c '^Inst ')
      [ "$n" -gt 0 ] || exit 0
      ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -y -o Dpkg::Options::=--force-confold upgrade || exit 1
      ph_changed "upgraded $n packages" ;;
    rpm)
      dnf -q check-update >/dev/null 2>&1; [ $? -eq 100 ] || exit 0
      ph_pkg_run dnf -q -y upgrade || exit 1
      ph_changed "upgraded packages" ;;
    *) echo "no package manager"; exit 2 ;;
    esac
  EOT
  check       = <<-EOT
    ph_live || { echo "package state is not checked under ROOT"; exit 2; }
    case $PH_FAMILY in
    deb)
      # Without package lists apt-get -s upgrade finds nothing to do, which proves nothing.
      ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || { echo "no apt package lists (apt-get update never ran): cannot tell; set install_packages = true or run apt-get update before this provisioner"; exit 3; }
      out=$(apt-get -s upgrade 2>&1) || { echo "apt-get -s upgrade failed: $out"; exit 3; }
      n=$(printf '%s\n' "$out" | grep -c '^Inst ')
      if [ "$n" -eq 0 ]; then echo "apt-get -s upgrade: 0 upgradable"; exit 0; fi
      echo "apt-get -s upgrade: $n upgradable:"
      printf '%s\n' "$out" | sed -n 's/^Inst \([^ ]*\).*/  \1/p' | head -n 20
      exit 1 ;;
    rpm)
      out=$(dnf -q check-update 2>&1); rc=$?
      case $rc in
      0) echo "dnf check-update: no updates" ;;
      100) echo "dnf check-update: updates available:"; printf '%s\n' "$out" | head -n 20; exit 1 ;;
      *) echo "dnf check-update failed: $out"; exit 3 ;;
      esac ;;
    *) echo "no package manager"; exit 2 ;;
    esac
  EOT
}
