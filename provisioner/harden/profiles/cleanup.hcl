# cleanup: what must not ship in an image, removed by the last provisioner
# and then verified gone. The build's own SSH connection keeps working: sshd
# authenticated it before its keys and authorized_keys were removed, and
# Packer runs every later command and the report download over it.
#
# References: aws = AWS "Guidelines for shared Linux AMIs" (the sections on
# credentials, keys and identifying data left in an image).

control "cleanup-ssh-host-keys" {
  title       = "No SSH host keys are baked into the image"
  description = "Every instance must make its own host keys. A unit that runs ssh-keygen -A before sshd is installed so instances without cloud-init stay reachable."
  severity    = "critical"
  references  = { aws = ["shared-ami-host-keys"] }
  apply       = <<-EOT
    ph_remove "$ROOT"/etc/ssh/ssh_host_*key "$ROOT"/etc/ssh/ssh_host_*key.pub
    [ -d "$ROOT/etc/ssh" ] || exit 0
    ph_hostkeys_unit
  EOT
  check       = <<-EOT
    ph_absent_check "$ROOT"/etc/ssh/ssh_host_*key "$ROOT"/etc/ssh/ssh_host_*key.pub || exit 1
    [ -d "$ROOT/etc/ssh" ] || { echo "no host keys; no sshd"; exit 0; }
    if [ -f "$ROOT/etc/systemd/system/phoenix-ssh-host-keys.service" ]; then
      echo "no host keys; phoenix-ssh-host-keys.service makes them at boot"
    elif [ -d "$ROOT/etc/cloud" ]; then
      echo "no host keys; cloud-init makes them at boot"
    else
      echo "no host keys and nothing makes them at boot: sshd will not start"; exit 1
    fi
  EOT
}

control "cleanup-authorized-keys" {
  title       = "No authorized_keys file is left for any user"
  description = "Every account's ~/.ssh/authorized_keys and authorized_keys2, and whatever AuthorizedKeysFile in sshd's effective configuration names, including the build's own key."
  severity    = "critical"
  references  = { aws = ["shared-ami-authorized-keys"] }
  apply       = <<-EOT
    ph_authorized_keys_files | while IFS= read -r f; do ph_remove "$f"; done
  EOT
  check       = <<-EOT
    n=0; left=
    for f in $(ph_authorized_keys_files); do
      n=$((n + 1))
      { [ -e "$f" ] || [ -L "$f" ]; } && left="$left $${f#"$ROOT"}"
    done
    if [ -n "$left" ]; then echo "still present:$left"; exit 1; fi
    echo "none of $n possible authorized_keys files exists"
  EOT
}

control "cleanup-shell-history" {
  title      = "No shell or tool history is left in home directories"
  severity   = "high"
  references = { aws = ["shared-ami-history"] }
  apply      = <<-EOT
    ph_homes | while read -r u h; do
      for n in .bash_history .zsh_history .ash_history .sh_history .history .python_history .lesshst .viminfo .mysql_history .psql_history .wget-hsts; do
        ph_remove "$ROOT$h/$n"
      done
    done
  EOT
  check      = <<-EOT
    left=$(ph_homes | while read -r u h; do
      for n in .bash_history .zsh_history .ash_history .sh_history .history .python_history .lesshst .viminfo .mysql_history .psql_history .wget-hsts; do
        [ -e "$ROOT$h/$n" ] && printf ' %s' "$h/$n"
      done
    done)
    if [ -n "$left" ]; then echo "still present:$left"; exit 1; fi
    echo "no history files"
  EOT
}

control "cleanup-cloud-init" {
  title      = "cloud-init state is reset so it runs again on first boot"
  severity   = "high"
  references = { aws = ["shared-ami-instance-data"] }
  apply      = <<-EOT
    [ -d "$ROOT/var/lib/cloud" ] || exit 0
    for e in "$ROOT"/var/lib/cloud/* "$ROOT"/var/lib/cloud/.[!.]*; do ph_remove "$e"; done
  EOT
  check      = <<-EOT
    [ -d "$ROOT/var/lib/cloud" ] || { echo "no /var/lib/cloud"; exit 0; }
    left=$(ls -A "$ROOT/var/lib/cloud")
    if [ -n "$left" ]; then echo "/var/lib/cloud holds:" $left; exit 1; fi
    echo "/var/lib/cloud is empty"
  EOT
}

control "cleanup-machine-id" {
  title      = "The machine id is empty so each instance gets its own"
  severity   = "high"
  references = { aws = ["shared-ami-instance-data"] }
  apply      = <<-EOT
    # Truncated, not removed: systemd treats an empty file as first boot.
    for f in "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"; do
      [ -f "$f" ] && [ ! -L "$f" ] && [ -s "$f" ] && : >"$f" && ph_changed "truncated $${f#"$ROOT"}"
    done
    exit 0
  EOT
  check      = <<-EOT
    rc=0
    for f in "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"; do
      [ -f "$f" ] && [ ! -L "$f" ] && [ -s "$f" ] && { echo "$${f#"$ROOT"} is not empty"; rc=1; }
    done
    [ $rc -eq 0 ] && echo "machine-id empty"
    exit $rc
  EOT
}

control "cleanup-audit-tool" {
  title       = "The auditor installed for the build's audit is gone"
  description = "The packages the audit setting installed (it lists them next to the hardening report) are purged with their files, then the list goes; an auditor the image had before the build stays."
  severity    = "high"
  references  = { phoenix = ["audit"] }
  apply       = <<-EOT
    f="$ROOT/var/lib/phoenix/audit-packages"
    [ -f "$f" ] || exit 0
    ph_pkg_absent_apply $(sort -u "$f") || exit 1
    ph_pkg_absent_check $(sort -u "$f") >/dev/null || { ph_pkg_absent_check $(sort -u "$f"); exit 1; }
    ph_remove "$f"
  EOT
  check       = <<-EOT
    f="$ROOT/var/lib/phoenix/audit-packages"
    if [ -f "$f" ]; then
      echo "installed for the audit and not removed yet: $(sort -u "$f" | tr '\n' ' ')"
      ph_pkg_absent_check $(sort -u "$f"); exit 1
    fi
    echo "no package installed for the audit is left"
  EOT
}

control "cleanup-logs" {
  title      = "Build-time logs and the journal are removed"
  severity   = "medium"
  references = { aws = ["shared-ami-logs"] }
  apply      = <<-EOT
    find "$ROOT/var/log" -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -exec rm -f {} + 2>/dev/null
    find "$ROOT/var/log" -type f \( -name '*.log' -o -name 'wtmp' -o -name 'btmp' -o -name 'lastlog' -o -name 'syslog' -o -name 'messages' -o -name 'secure' \) -size +0 2>/dev/null |
      while IFS= read -r f; do : >"$f" && ph_changed "truncated $${f#"$ROOT"}"; done
    [ -d "$ROOT/var/log/journal" ] && find "$ROOT/var/log/journal" -type f -name '*.journal*' 2>/dev/null | while IFS= read -r f; do rm -f "$f" && ph_changed "removed $${f#"$ROOT"}"; done
    exit 0
  EOT
  check      = <<-EOT
    left=$(
      find "$ROOT/var/log" -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) 2>/dev/null
      find "$ROOT/var/log" -type f \( -name '*.log' -o -name 'wtmp' -o -name 'btmp' -o -name 'lastlog' -o -name 'syslog' -o -name 'messages' -o -name 'secure' \) -size +0 2>/dev/null |
        grep -v '/var/log/phoenix-harden' ; find "$ROOT/var/log/journal" -type f -name '*.journal*' 2>/dev/null)
    if [ -n "$left" ]; then echo "log data left:"; printf '%s\n' "$left" | sed "s|^$ROOT||" | head -n 20; exit 1; fi
    echo "logs truncated, no rotated logs, no journal files"
  EOT
}

control "cleanup-package-cache" {
  title      = "Package manager caches are empty"
  severity   = "low"
  references = { aws = ["shared-ami-size"] }
  apply      = <<-EOT
    for f in "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/dnf/* "$ROOT"/var/cache/yum/*; do
      ph_remove "$f"
    done
  EOT
  check      = <<-EOT
    ph_absent_check "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/dnf/* "$ROOT"/var/cache/yum/* || exit 1
    echo "no cached packages"
  EOT
}

control "cleanup-tmp" {
  title      = "/tmp and /var/tmp are empty"
  severity   = "low"
  references = { aws = ["shared-ami-size"] }
  apply      = <<-EOT
    for d in "$ROOT/tmp" "$ROOT/var/tmp"; do
      for e in "$d"/* "$d"/.[!.]*; do
        case $e in "$PH_SELF"|*/systemd-private-*|*/.X11-unix|*/.ICE-unix|*/.font-unix|*/.XIM-unix|*/.Test-unix) continue ;; esac
        ph_remove "$e"
      done
    done
  EOT
  check      = <<-EOT
    left=
    for d in "$ROOT/tmp" "$ROOT/var/tmp"; do
      for e in "$d"/* "$d"/.[!.]*; do
        [ -e "$e" ] || continue
        case $e in "$PH_SELF"|*/systemd-private-*|*/.X11-unix|*/.ICE-unix|*/.font-unix|*/.XIM-unix|*/.Test-unix) continue ;; esac
        left="$left $${e#"$ROOT"}"
      done
    done
    if [ -n "$left" ]; then echo "still present:$left"; exit 1; fi
    echo "empty (this script removes itself when it ends)"
  EOT
}
