# cis-level1: the CIS Level 1 Server items that can be automated at bake
# time, on top of baseline. Items that need the running instance (mount
# options of real volumes, firewall state, bootloader passwords) are left
# to the instance. Two items beyond Level 1 are included: auditd (Level 2,
# 6.2.x), because an image is the cheap place to set it up, and process
# accounting (Lynis ACCT-9622); install_auditd = false and install_acct =
# false keep to Level 1.

param "install_auditd" {
  type        = "bool"
  default     = "true"
  description = "Install auditd and its rules (auditd-installed, auditd-enabled, auditd-rules). False: those controls are not applicable. Costs about 0.9 MB and one daemon; the rules log identity, sudoers, time and login changes."
}

param "install_aide" {
  type        = "bool"
  default     = "true"
  description = "Install AIDE, build its database of the image at bake time and enable its daily check (aide-installed, aide-audit-tools, aide-database, aide-daily-check). False: those controls are not applicable. Costs about 1 MB of packages plus the database (3 MB for the sandbox's Debian image), and build time (see the docs); no boot time."
}

param "install_acct" {
  type        = "bool"
  default     = "true"
  description = "Install process accounting (acct) and enable it at boot. False: the control is not applicable. Costs about 0.3 MB and a log that grows with the number of processes (rotated daily)."
}

param "ssh_allow_forwarding" {
  type        = "bool"
  default     = "false"
  description = "Keep SSH port and agent forwarding (bastion hosts, tunnels); ssh-disable-forwarding is then not applicable."
}

param "disable_squashfs" {
  type        = "bool"
  default     = "false"
  description = "Disable the squashfs module too. Snap packages (Ubuntu) need squashfs, so this is off by default and kmod-squashfs is then not applicable."
}

# ---- SSH daemon ---------------------------------------------------------------

control "ssh-log-level" {
  title      = "sshd logs at INFO or VERBOSE"
  severity   = "low"
  references = { cis = ["5.1.14"], devsec = ["sshd-13"], lynis = ["SSH-7408"] }
  apply      = <<-EOT
    ph_sshd_load >/dev/null 2>&1
    case $(ph_sshd_value loglevel INFO | tr a-z A-Z) in INFO|VERBOSE) exit 0 ;; esac
    ph_sshd_set LogLevel VERBOSE
  EOT
  check      = <<-EOT
    ph_sshd_load || exit $?
    v=$(ph_sshd_value loglevel INFO)
    case $(echo "$v" | tr a-z A-Z) in INFO|VERBOSE) echo "loglevel $v ($PH_SSHD_SRC)" ;; *) echo "loglevel is $v, want INFO or VERBOSE ($PH_SSHD_SRC)"; exit 1 ;; esac
  EOT
}

control "ssh-login-grace-time" {
  title      = "sshd drops unauthenticated connections within 60 seconds"
  severity   = "low"
  references = { cis = ["5.1.13"], devsec = ["sshd-18"] }
  apply      = "ph_sshd_set LoginGraceTime 60"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect_max logingracetime 60 120
  EOT
}

control "ssh-client-alive" {
  title      = "sshd ends unresponsive sessions"
  severity   = "low"
  references = { cis = ["5.1.7"], devsec = ["sshd-36", "sshd-37"], lynis = ["SSH-7408"] }
  apply      = "ph_sshd_set ClientAliveInterval 300 && ph_sshd_set ClientAliveCountMax 3"
  check      = <<-EOT
    ph_sshd_load || exit $?
    rc=0
    ph_sshd_expect_max clientaliveinterval 300 0 || rc=1
    ph_sshd_expect_max clientalivecountmax 3 3 || rc=1
    exit $rc
  EOT
}

control "ssh-max-startups" {
  title      = "sshd limits concurrent unauthenticated connections"
  severity   = "low"
  references = { cis = ["5.1.18"], devsec = ["sshd-21"] }
  apply      = "ph_sshd_set MaxStartups 10:30:60"
  check      = <<-EOT
    ph_sshd_load || exit $?
    v=$(ph_sshd_value maxstartups 10:30:100)
    a=$(echo "$v" | cut -d: -f1); b=$(echo "$v" | cut -s -d: -f2); c=$(echo "$v" | cut -s -d: -f3)
    if [ "$${a:-99}" -le 10 ] && [ "$${b:-0}" -le 30 ] && [ "$${c:-$a}" -le 60 ]; then echo "maxstartups $v ($PH_SSHD_SRC)"; exit 0; fi
    echo "maxstartups is $v, want at most 10:30:60 ($PH_SSHD_SRC)"; exit 1
  EOT
}

control "ssh-max-sessions" {
  title      = "sshd allows at most 10 sessions per connection"
  severity   = "low"
  references = { cis = ["5.1.17"], devsec = ["sshd-20"], lynis = ["SSH-7408"] }
  apply      = "ph_sshd_set MaxSessions 10"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect_max maxsessions 10 10
  EOT
}

control "ssh-use-pam" {
  title      = "sshd uses PAM"
  severity   = "low"
  references = { cis = ["5.1.22"] }
  apply      = "ph_sshd_set UsePAM yes"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect usepam yes no
  EOT
}

# ---- kernel ----------------------------------------------------------------------

control "sysctl-ptrace-scope" {
  title      = "ptrace is restricted to descendants"
  severity   = "medium"
  references = { cis = ["1.5.2"], lynis = ["KRNL-6000"] }
  apply      = "ph_sysctl_apply kernel.yama.ptrace_scope=1"
  check      = "ph_sysctl_check kernel.yama.ptrace_scope=1"
}

control "kmod-squashfs" {
  title      = "The squashfs filesystem module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.6"] }
  params     = ["disable_squashfs"]
  apply      = <<-EOT
    ph_is_true "$PARAM_disable_squashfs" || { echo "disable_squashfs = false"; exit 2; }
    ph_module_disable_apply squashfs
  EOT
  check      = <<-EOT
    ph_is_true "$PARAM_disable_squashfs" || { echo "disable_squashfs = false"; exit 2; }
    ph_module_disable_check squashfs
  EOT
}


# ---- accounts and login.defs -------------------------------------------------------



control "login-defs-pass-warn-age" {
  title      = "Users are warned 7 days before their password expires"
  severity   = "low"
  references = { cis = ["5.4.1.3"], devsec = ["os-05"] }
  apply      = <<-EOT
    [ -f "$PH_LOGIN_DEFS" ] || { echo "no /etc/login.defs"; exit 2; }
    ph_login_defs_check PASS_WARN_AGE ge 7 >/dev/null || ph_set_kv "$PH_LOGIN_DEFS" PASS_WARN_AGE 7 " "
  EOT
  check      = "ph_login_defs_check PASS_WARN_AGE ge 7"
}

control "login-defs-encrypt-method" {
  title      = "Passwords are hashed with SHA512 or yescrypt"
  severity   = "medium"
  references = { cis = ["5.4.1.4"], devsec = ["os-05"] }
  apply      = <<-EOT
    [ -f "$PH_LOGIN_DEFS" ] || { echo "no /etc/login.defs"; exit 2; }
    case $(ph_get_kv "$PH_LOGIN_DEFS" ENCRYPT_METHOD) in SHA512|YESCRYPT) ;; *) ph_set_kv "$PH_LOGIN_DEFS" ENCRYPT_METHOD SHA512 " " ;; esac
  EOT
  check      = <<-EOT
    v=$(ph_get_kv "$PH_LOGIN_DEFS" ENCRYPT_METHOD)
    case $v in SHA512|YESCRYPT) echo "ENCRYPT_METHOD $v in /etc/login.defs" ;; *) echo "ENCRYPT_METHOD is '$${v:-unset}', want SHA512 or YESCRYPT"; exit 1 ;; esac
  EOT
}


control "accounts-inactive" {
  title      = "New accounts lock 30 days after their password expires"
  severity   = "low"
  references = { cis = ["5.4.1.5"] }
  apply      = <<-EOT
    v=$(ph_get_kv "$ROOT/etc/default/useradd" INACTIVE)
    case $v in [1-9]|[12][0-9]|30) exit 0 ;; esac
    ph_set_kv "$ROOT/etc/default/useradd" INACTIVE 30 "="
  EOT
  check      = <<-EOT
    v=$(ph_get_kv "$ROOT/etc/default/useradd" INACTIVE)
    case $v in [1-9]|[12][0-9]|30) echo "INACTIVE=$v in /etc/default/useradd" ;; *) echo "INACTIVE is '$${v:-unset}' in /etc/default/useradd, want 1..30"; exit 1 ;; esac
  EOT
}

# ---- unwanted services -----------------------------------------------------------

control "pkg-avahi" {
  title      = "The avahi daemon is not installed"
  severity   = "medium"
  references = { cis = ["2.1.2"] }
  apply      = "ph_pkg_absent_apply avahi-daemon avahi"
  check      = "ph_pkg_absent_check avahi-daemon avahi"
}

control "pkg-dhcp-server" {
  title      = "No DHCP server is installed"
  severity   = "medium"
  references = { cis = ["2.1.3"] }
  apply      = "ph_pkg_absent_apply isc-dhcp-server kea-dhcp4-server dhcp-server"
  check      = "ph_pkg_absent_check isc-dhcp-server kea-dhcp4-server dhcp-server"
}

control "pkg-ftp-server" {
  title      = "No FTP server is installed"
  severity   = "medium"
  references = { cis = ["2.1.6"] }
  apply      = "ph_pkg_absent_apply vsftpd proftpd-basic pure-ftpd"
  check      = "ph_pkg_absent_check vsftpd proftpd-basic pure-ftpd"
}

control "pkg-ldap-server" {
  title      = "No LDAP server is installed"
  severity   = "medium"
  references = { cis = ["2.1.7"] }
  apply      = "ph_pkg_absent_apply slapd openldap-servers"
  check      = "ph_pkg_absent_check slapd openldap-servers"
}

control "pkg-cups" {
  title      = "The CUPS print server is not installed"
  severity   = "low"
  references = { cis = ["2.1.11"] }
  apply      = "ph_pkg_absent_apply cups cups-daemon"
  check      = "ph_pkg_absent_check cups cups-daemon"
}

control "pkg-snmpd" {
  title      = "No SNMP daemon is installed"
  severity   = "medium"
  references = { cis = ["2.1.15"] }
  apply      = "ph_pkg_absent_apply snmpd net-snmp"
  check      = "ph_pkg_absent_check snmpd net-snmp"
}

control "pkg-tftp-server" {
  title      = "No TFTP server is installed"
  severity   = "medium"
  references = { cis = ["2.1.16"], devsec = ["package-06"] }
  apply      = "ph_pkg_absent_apply tftpd-hpa atftpd tftp-server"
  check      = "ph_pkg_absent_check tftpd-hpa atftpd tftp-server"
}

control "pkg-ldap-client" {
  title      = "The LDAP client tools are not installed"
  severity   = "low"
  references = { cis = ["2.2.5"] }
  apply      = "ph_pkg_absent_apply ldap-utils openldap-clients"
  check      = "ph_pkg_absent_check ldap-utils openldap-clients"
}

# ---- auditd ------------------------------------------------------------------------

control "auditd-installed" {
  title      = "auditd is installed"
  severity   = "high"
  references = { cis = ["6.2.1.1"], devsec = ["package-08"], lynis = ["ACCT-9628"] }
  params     = ["install_packages", "install_auditd"]
  apply      = <<-EOT
    ph_opted_in "$PARAM_install_auditd" install_auditd || exit 2
    p=auditd; [ "$PH_FAMILY" = rpm ] && p=audit
    ph_pkg_installed $p || ph_pkg_install $p
  EOT
  check      = <<-EOT
    ph_opted_in "$PARAM_install_auditd" install_auditd || exit 2
    p=auditd; [ "$PH_FAMILY" = rpm ] && p=audit
    ph_pkg_present_check $p
  EOT
}

control "auditd-enabled" {
  title      = "auditd starts at boot"
  severity   = "high"
  references = { cis = ["6.2.1.2"] }
  apply      = <<-EOT
    ph_unit_file auditd.service >/dev/null || { echo "auditd.service not found (see auditd-installed)"; exit 2; }
    ph_unit_enable auditd.service
  EOT
  check      = <<-EOT
    ph_unit_file auditd.service >/dev/null || { echo "auditd.service not found (see auditd-installed)"; exit 2; }
    if ph_unit_enabled auditd.service; then echo "auditd.service enabled"; exit 0; fi
    echo "auditd.service is not enabled"; exit 1
  EOT
}

control "auditd-rules" {
  title      = "auditd records changes to identity, sudoers, time and logins"
  severity   = "medium"
  references = { cis = ["6.2.3.1", "6.2.3.3", "6.2.3.4", "6.2.3.8", "6.2.3.11", "6.2.3.12"], lynis = ["ACCT-9630"] }
  apply      = <<-EOT
    [ -d "$ROOT/etc/audit" ] || { echo "auditd is not installed (see auditd-installed)"; exit 2; }
    ph_audit_rules >"$PH_TMP/audit.rules"
    ph_replace_file "$ROOT/etc/audit/rules.d/50-phoenix-hardening.rules" "$PH_TMP/audit.rules" || exit 1
    chmod 0640 "$ROOT/etc/audit/rules.d/50-phoenix-hardening.rules"
  EOT
  check      = <<-EOT
    [ -d "$ROOT/etc/audit" ] || { echo "auditd is not installed (see auditd-installed)"; exit 2; }
    cat "$ROOT"/etc/audit/rules.d/*.rules 2>/dev/null | sed 's/[[:space:]]\{1,\}/ /g; s/ $//' >"$PH_TMP/have.rules"
    missing=$(ph_audit_rules | while IFS= read -r r; do grep -qxF -- "$r" "$PH_TMP/have.rules" || echo "  $r"; done)
    if [ -n "$missing" ]; then echo "missing from /etc/audit/rules.d:"; echo "$missing"; exit 1; fi
    echo "$(ph_audit_rules | wc -l | tr -d ' ') rules persisted in /etc/audit/rules.d (loaded by augenrules at boot)"
  EOT
}

# ---- what Lynis audits too ---------------------------------------------------------

control "ssh-banner" {
  title      = "sshd shows the legal banner before login"
  severity   = "low"
  references = { cis = ["5.1.5"] }
  apply      = "ph_sshd_set Banner /etc/issue.net"
  check      = <<-EOT
    ph_sshd_load || exit $?
    ph_sshd_expect banner /etc/issue.net none
  EOT
}

control "ssh-disable-forwarding" {
  title       = "sshd forwards no ports, agents or X11"
  description = "DisableForwarding, and AllowTcpForwarding and AllowAgentForwarding off too, which is what `sshd -T` shows and auditors read."
  severity    = "medium"
  references  = { cis = ["5.1.8"], devsec = ["sshd-34", "sshd-35"], lynis = ["SSH-7408"] }
  params      = ["ssh_allow_forwarding"]
  apply       = <<-EOT
    if ph_is_true "$PARAM_ssh_allow_forwarding"; then echo "ssh_allow_forwarding = true"; exit 2; fi
    ph_sshd_set DisableForwarding yes && ph_sshd_set AllowTcpForwarding no && ph_sshd_set AllowAgentForwarding no
  EOT
  check       = <<-EOT
    if ph_is_true "$PARAM_ssh_allow_forwarding"; then echo "ssh_allow_forwarding = true"; exit 2; fi
    ph_sshd_load || exit $?
    rc=0
    ph_sshd_expect disableforwarding yes no || rc=1
    ph_sshd_expect allowtcpforwarding no yes || rc=1
    ph_sshd_expect allowagentforwarding no yes || rc=1
    exit $rc
  EOT
}

control "aide-installed" {
  title      = "AIDE, a file integrity checker, is installed"
  severity   = "medium"
  references = { cis = ["6.3.1"], lynis = ["FINT-4350"] }
  params     = ["install_aide", "install_packages"]
  apply      = <<-EOT
    [ "$PH_FAMILY" = deb ] || { echo "written for Debian's aide packages"; exit 2; }
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    ph_pkg_installed aide || ph_pkg_install aide aide-common
  EOT
  check      = <<-EOT
    [ "$PH_FAMILY" = deb ] || { echo "written for Debian's aide packages"; exit 2; }
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    ph_pkg_present_check aide
  EOT
}

control "aide-audit-tools" {
  title       = "AIDE guards the audit tools with SHA-512"
  description = "A group of AIDE attributes with sha512 for auditctl, auditd, ausearch, aureport, autrace and augenrules, in /etc/aide/aide.conf (before the database is built)."
  severity    = "low"
  references  = { cis = ["6.3.3"], lynis = ["FINT-4402"] }
  params      = ["install_aide"]
  apply       = <<-EOT
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    c="$ROOT/etc/aide/aide.conf"
    [ -f "$c" ] || { echo "AIDE is not installed (see aide-installed)"; exit 2; }
    ph_aide_audit_tools_rules >"$PH_TMP/aide.rules"
    missing=$(while IFS= read -r r; do grep -qxF -- "$r" "$c" || echo "$r"; done <"$PH_TMP/aide.rules")
    [ -n "$missing" ] || exit 0
    { cat "$c"; printf '\n# phoenix-harden: the audit tools, SHA-512 (CIS 6.3.3)\n%s\n' "$missing"; } >"$PH_TMP/aide.conf"
    ph_replace_file "$c" "$PH_TMP/aide.conf"
    # The database records the old rules: build it again.
    ph_remove "$ROOT/var/lib/aide/aide.db"
  EOT
  check       = <<-EOT
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    c="$ROOT/etc/aide/aide.conf"
    [ -f "$c" ] || { echo "AIDE is not installed (see aide-installed)"; exit 2; }
    missing=$(ph_aide_audit_tools_rules | while IFS= read -r r; do grep -qxF -- "$r" "$c" || echo "  $r"; done)
    if [ -n "$missing" ]; then echo "missing from /etc/aide/aide.conf:"; echo "$missing"; exit 1; fi
    echo "audit tools guarded by PhoenixAuditTools (sha512) in /etc/aide/aide.conf"
  EOT
}

control "aide-database" {
  title       = "AIDE's database records the image as baked"
  description = "Built with aideinit at bake time, after the other controls, so the first check on an instance compares it with the image it came from."
  severity    = "medium"
  references  = { cis = ["6.3.1"], lynis = ["FINT-4315", "FINT-4316"] }
  params      = ["install_aide"]
  apply       = <<-EOT
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    [ -f "$ROOT/etc/aide/aide.conf" ] || { echo "AIDE is not installed (see aide-installed)"; exit 2; }
    [ -s "$ROOT/var/lib/aide/aide.db" ] && exit 0
    ph_live || { echo "not building the AIDE database under ROOT"; exit 1; }
    aideinit --yes --force >"$PH_TMP/aide.out" 2>&1 || { tail -n 5 "$PH_TMP/aide.out"; exit 1; }
    [ -s /var/lib/aide/aide.db ] || mv /var/lib/aide/aide.db.new /var/lib/aide/aide.db || exit 1
    # aideinit leaves the new database next to the one it installs.
    rm -f /var/lib/aide/aide.db.new
    ph_changed "built /var/lib/aide/aide.db"
  EOT
  check       = <<-EOT
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    [ -f "$ROOT/etc/aide/aide.conf" ] || { echo "AIDE is not installed (see aide-installed)"; exit 2; }
    [ ! -e "$ROOT/var/lib/aide/aide.db.new" ] || { echo "a second database, /var/lib/aide/aide.db.new, is left in the image"; exit 1; }
    if [ -s "$ROOT/var/lib/aide/aide.db" ]; then echo "/var/lib/aide/aide.db: $(stat -c %s "$ROOT/var/lib/aide/aide.db") bytes"; exit 0; fi
    echo "no AIDE database at /var/lib/aide/aide.db"; exit 1
  EOT
}

control "aide-daily-check" {
  title      = "AIDE checks the file system every day"
  severity   = "low"
  references = { cis = ["6.3.2"] }
  params     = ["install_aide"]
  apply      = <<-EOT
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    ph_unit_file dailyaidecheck.timer >/dev/null || { echo "dailyaidecheck.timer not found (see aide-installed)"; exit 2; }
    ph_unit_enable dailyaidecheck.timer
  EOT
  check      = <<-EOT
    ph_opted_in "$PARAM_install_aide" install_aide || exit 2
    ph_unit_file dailyaidecheck.timer >/dev/null || { echo "dailyaidecheck.timer not found (see aide-installed)"; exit 2; }
    if ph_unit_enabled dailyaidecheck.timer; then echo "dailyaidecheck.timer enabled"; exit 0; fi
    echo "dailyaidecheck.timer is not enabled"; exit 1
  EOT
}

control "process-accounting" {
  title      = "Process accounting (acct) records every command run"
  severity   = "low"
  references = { lynis = ["ACCT-9622"] }
  params     = ["install_acct", "install_packages"]
  apply      = <<-EOT
    [ "$PH_FAMILY" = deb ] || { echo "written for Debian's acct package"; exit 2; }
    ph_opted_in "$PARAM_install_acct" install_acct || exit 2
    ph_pkg_installed acct || ph_pkg_install acct || exit 1
    ph_unit_enable acct.service
  EOT
  check      = <<-EOT
    [ "$PH_FAMILY" = deb ] || { echo "written for Debian's acct package"; exit 2; }
    ph_opted_in "$PARAM_install_acct" install_acct || exit 2
    ph_pkg_present_check acct || exit 1
    if ph_unit_enabled acct.service; then echo "acct.service enabled"; exit 0; fi
    echo "acct.service is not enabled"; exit 1
  EOT
}

