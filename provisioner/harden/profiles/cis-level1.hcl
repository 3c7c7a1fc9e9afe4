# cis-level1: the CIS Level 1 Server items that can be automated at bake
# time, on top of baseline. Items that need the running instance (mount
# options of real volumes, firewall state, bootloader passwords) are left
# to the instance. Two Level 2 items are included: auditd (6.2.x), because
# an image is the cheap place to set it up, and PASS_MIN_DAYS (5.4.1.2);
# skip auditd-installed, auditd-enabled, auditd-rules and
# login-defs-pass-min-days to stay strictly Level 1.

param "disable_squashfs" {
  type        = "bool"
  default     = "false"
  description = "Disable the squashfs module too. Snap packages (Ubuntu) need squashfs, so this is off by default and kmod-squashfs is then not applicable."
}

# ---- SSH daemon ---------------------------------------------------------------

control "ssh-log-level" {
  title      = "sshd logs at INFO or VERBOSE"
  severity   = "low"
  references = { cis = ["5.1.14"], devsec = ["sshd-13"] }
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
  references = { cis = ["5.1.7"], devsec = ["sshd-36", "sshd-37"] }
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
  references = { cis = ["5.1.17"], devsec = ["sshd-20"] }
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
  references = { cis = ["1.5.2"] }
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

control "kmod-usb-storage" {
  title      = "The usb-storage module is disabled"
  severity   = "low"
  references = { cis = ["1.1.1.8"] }
  apply      = "ph_module_disable_apply usb-storage"
  check      = "ph_module_disable_check usb-storage"
}

# ---- accounts and login.defs -------------------------------------------------------

control "login-defs-pass-max-days" {
  title      = "Passwords expire within 365 days"
  severity   = "medium"
  references = { cis = ["5.4.1.1"], devsec = ["os-05"] }
  apply      = <<-EOT
    [ -f "$PH_LOGIN_DEFS" ] || { echo "no /etc/login.defs"; exit 2; }
    ph_login_defs_check PASS_MAX_DAYS le 365 >/dev/null || ph_set_kv "$PH_LOGIN_DEFS" PASS_MAX_DAYS 365 " "
  EOT
  check      = "ph_login_defs_check PASS_MAX_DAYS le 365"
}

control "login-defs-pass-min-days" {
  title       = "Passwords cannot be changed again within a day"
  description = "A CIS Level 2 item (5.4.1.2), kept here because it costs nothing on servers without password logins."
  severity   = "low"
  references = { cis = ["5.4.1.2"], devsec = ["os-05"] }
  apply      = <<-EOT
    [ -f "$PH_LOGIN_DEFS" ] || { echo "no /etc/login.defs"; exit 2; }
    ph_login_defs_check PASS_MIN_DAYS ge 1 >/dev/null || ph_set_kv "$PH_LOGIN_DEFS" PASS_MIN_DAYS 1 " "
  EOT
  check      = "ph_login_defs_check PASS_MIN_DAYS ge 1"
}

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

control "login-defs-umask" {
  title      = "The default umask is 027"
  severity   = "medium"
  references = { cis = ["5.4.3.3"], devsec = ["os-05"] }
  apply      = <<-EOT
    [ -f "$PH_LOGIN_DEFS" ] || { echo "no /etc/login.defs"; exit 2; }
    ph_set_kv "$PH_LOGIN_DEFS" UMASK 027 " "
  EOT
  check      = "ph_login_defs_check UMASK eq 027"
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

control "shell-timeout" {
  title      = "Idle interactive shells end after 15 minutes"
  severity   = "low"
  references = { cis = ["5.4.3.2"] }
  apply      = <<-EOT
    f="$ROOT/etc/profile.d/phoenix-tmout.sh"
    printf '# phoenix-harden: idle interactive shells end after 15 minutes.\nreadonly TMOUT=900\nexport TMOUT\n' >"$PH_TMP/tmout"
    ph_replace_file "$f" "$PH_TMP/tmout" && chmod 0644 "$f"
  EOT
  check      = <<-EOT
    v=$(cat "$ROOT/etc/profile" "$ROOT"/etc/profile.d/*.sh "$ROOT/etc/bash.bashrc" "$ROOT/etc/bashrc" 2>/dev/null |
      grep -E '^[[:space:]]*((readonly|export)[[:space:]]+)?TMOUT=[0-9]+' | sed 's/.*TMOUT=\([0-9]*\).*/\1/' | tail -n 1)
    if [ -n "$v" ] && [ "$v" -ge 1 ] && [ "$v" -le 900 ]; then echo "TMOUT=$v"; exit 0; fi
    echo "TMOUT is '$${v:-unset}' in /etc/profile*, want 1..900"; exit 1
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
  references = { cis = ["6.2.1.1"], devsec = ["package-08"] }
  params     = ["install_packages"]
  apply      = <<-EOT
    p=auditd; [ "$PH_FAMILY" = rpm ] && p=audit
    ph_pkg_installed $p || ph_pkg_install $p
  EOT
  check      = <<-EOT
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
  references = { cis = ["6.2.3.1", "6.2.3.3", "6.2.3.4", "6.2.3.8", "6.2.3.11", "6.2.3.12"] }
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
