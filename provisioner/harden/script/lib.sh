# ---- phoenix-harden runtime library (POSIX sh; runs under dash) ----------
# Every path a control touches is "$ROOT/..." so tests can point ROOT at a
# fixture tree. When ROOT is set, nothing acts on the running system: no
# sshd -T/-t, no package manager, no live sysctl outside "$ROOT/proc/sys".

ph_live() { [ -z "$ROOT" ]; }
ph_has() { command -v "$1" >/dev/null 2>&1; }
# ph_changed MESSAGE: the marker that makes a control report changed=true.
ph_changed() { printf 'changed: %s\n' "$*"; }
ph_is_true() { case $1 in true|1|yes) return 0 ;; esac; return 1; }

# ph_json_escape: stdin to a JSON string body on stdout (no quotes).
# Bytes are kept; ", \, control characters and DEL are escaped.
ph_json_escape() {
	LC_ALL=C awk -v max="${1:-8000}" '
	BEGIN {
		for (i = 1; i < 32; i++) e[sprintf("%c", i)] = sprintf("\\u%04x", i)
		e["\t"] = "\\t"; e["\r"] = "\\r"; e["\b"] = "\\b"; e["\f"] = "\\f"
		e["\""] = "\\\""; e["\\"] = "\\\\"; e[sprintf("%c", 127)] = "\\u007f"
		n = 0
	}
	{
		if (NR > 1) { printf "\\n"; n++ }
		len = length($0)
		for (i = 1; i <= len; i++) {
			if (n >= max) { if (!cut) printf "…[truncated]"; cut = 1; next }
			c = substr($0, i, 1)
			if (c in e) printf "%s", e[c]; else printf "%s", c
			n++
		}
	}'
}

# ph_same A B: true when both files have the same bytes.
ph_same() { [ "$(cksum <"$1")" = "$(cksum <"$2" 2>/dev/null)" ]; }

# ph_replace_file FILE NEWFILE: install NEWFILE's bytes as FILE (keeping
# FILE's inode, owner and mode when it exists), reporting a change.
ph_replace_file() {
	if [ -f "$1" ] && ph_same "$2" "$1"; then rm -f "$2"; return 0; fi
	mkdir -p "${1%/*}" || return 1
	cat "$2" >"$1" || return 1
	rm -f "$2"
	ph_changed "${1#"$ROOT"}"
}

# ph_set_kv FILE KEY VALUE SEP: make FILE hold exactly one active
# "KEY<SEP>VALUE" line (keys compared case-insensitively), replacing the
# first active KEY line in place and dropping later ones, else appending.
ph_set_kv() {
	_f=$1; _t="$PH_TMP/kv.$$"
	[ -f "$_f" ] || { mkdir -p "${_f%/*}" && : >"$_f"; } || return 1
	awk -v k="$2" -v new="$2$4$3" '
	BEGIN { lk = tolower(k) }
	{
		s = $0; sub(/^[ \t]+/, "", s)
		if (tolower(substr(s, 1, length(lk))) == lk) {
			rest = substr(s, length(lk) + 1)
			if (rest == "" || rest ~ /^[ \t=]/) { if (!done) print new; done = 1; next }
		}
		print
	}
	END { if (!done) print new }' "$_f" >"$_t" || return 1
	ph_replace_file "$_f" "$_t"
}

# ph_get_kv FILE KEY: the value of the last active KEY line ("" if none).
ph_get_kv() {
	[ -f "$1" ] || return 0
	awk -v k="$2" '
	BEGIN { lk = tolower(k) }
	{
		s = $0; sub(/^[ \t]+/, "", s)
		if (tolower(substr(s, 1, length(lk))) != lk) next
		rest = substr(s, length(lk) + 1)
		if (rest != "" && rest !~ /^[ \t=]/) next
		sub(/^[ \t]*=?[ \t]*/, "", rest); sub(/[ \t]+$/, "", rest); v = rest
	}
	END { print v }' "$1"
}

# ---- files and permissions -------------------------------------------------

# ph_perm_apply PATH MODE OWNER GROUP: chmod/chown when different.
ph_perm_apply() {
	[ -e "$1" ] || { echo "${1#"$ROOT"}: absent"; return 0; }
	_before=$(stat -c '%a %U %G' "$1")
	chown "$3:$4" "$1" && chmod "$2" "$1" || return 1
	_after=$(stat -c '%a %U %G' "$1")
	[ "$_before" = "$_after" ] || ph_changed "${1#"$ROOT"}: $_before -> $_after"
}

# ph_perm_check PATH MAXMODE OWNER GROUPS: mode must grant no bit beyond
# MAXMODE (octal), owner must match, group one of GROUPS (|-separated).
ph_perm_check() {
	[ -e "$1" ] || { echo "${1#"$ROOT"}: absent"; return 0; }
	set -- "$1" "$2" "$3" "$4" $(stat -c '%a %U %G' "$1")
	_extra=$(( 0$5 & ~0$2 & 07777 ))
	_ok=0
	[ "$_extra" -eq 0 ] || _ok=1
	[ "$6" = "$3" ] || _ok=1
	case "|$4|" in *"|$7|"*) ;; *) _ok=1 ;; esac
	if [ $_ok -eq 0 ]; then
		echo "${1#"$ROOT"}: $5 $6:$7 (at most $2 $3:$4)"
	else
		echo "${1#"$ROOT"}: $5 $6:$7, want at most $2 $3:$4"
	fi
	return $_ok
}

# ---- packages ----------------------------------------------------------------

ph_pkg_installed() {
	case $PH_FAMILY in
	deb)
		ph_has dpkg-query || return 1
		_s=$(dpkg-query ${ROOT:+--admindir="$ROOT/var/lib/dpkg"} -W -f='${Status}' "$1" 2>/dev/null)
		case $_s in *" installed") return 0 ;; esac
		return 1 ;;
	rpm)
		ph_has rpm || return 1
		rpm ${ROOT:+--root "$ROOT"} -q "$1" >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

# Package scripts must not start or restart services mid-build (an sshd
# restart would load half-applied settings): policy-rc.d on Debian/Ubuntu,
# SYSTEMD_OFFLINE for rpm scriptlets.
ph_pkg_run() {
	_prc=/usr/sbin/policy-rc.d; _made=
	if [ "$PH_FAMILY" = deb ] && [ ! -e $_prc ]; then
		printf '#!/bin/sh\nexit 101\n' >$_prc && chmod 0755 $_prc && _made=1
	fi
	# needrestart (Ubuntu) would restart services after the upgrade itself.
	DEBIAN_FRONTEND=noninteractive SYSTEMD_OFFLINE=1 NEEDRESTART_SUSPEND=1 NEEDRESTART_MODE=l \
		"$@" >"$PH_TMP/pkg.out" 2>&1
	_rc=$?
	[ -z "$_made" ] || rm -f $_prc
	[ $_rc -eq 0 ] || tail -n 5 "$PH_TMP/pkg.out"
	return $_rc
}

ph_apt_updated=
ph_pkg_install() {
	ph_live || { echo "not installing $* under ROOT"; return 1; }
	ph_is_true "$PARAM_install_packages" || { echo "$* not installed and install_packages = false"; return 1; }
	case $PH_FAMILY in
	deb)
		if [ -z "$ph_apt_updated" ]; then
			ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=1 -o Acquire::http::Timeout=20 update || { echo "apt-get update failed (no network?)"; return 1; }
			ph_apt_updated=1
		fi
		ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -y --no-install-recommends -o Dpkg::Options::=--force-confold install "$@" || { echo "apt-get install $* failed"; return 1; } ;;
	rpm) ph_pkg_run dnf -q -y install "$@" || { echo "dnf install $* failed"; return 1; } ;;
	*) echo "no package manager"; return 1 ;;
	esac
	ph_changed "installed $*"
}

# ph_pkg_absent_apply PKG...: remove the installed ones.
ph_pkg_absent_apply() {
	_rm=
	for _p in "$@"; do ph_pkg_installed "$_p" && _rm="$_rm $_p"; done
	[ -n "$_rm" ] || return 0
	ph_live || { echo "not removing$_rm under ROOT"; return 1; }
	case $PH_FAMILY in
	deb) ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -y purge $_rm || return 1 ;;
	rpm) ph_pkg_run dnf -q -y remove $_rm || return 1 ;;
	esac
	ph_changed "removed$_rm"
}

ph_pkg_absent_check() {
	_bad=
	for _p in "$@"; do ph_pkg_installed "$_p" && _bad="$_bad $_p"; done
	if [ -n "$_bad" ]; then echo "installed:$_bad"; return 1; fi
	echo "not installed: $*"
}

ph_pkg_present_check() {
	if ph_pkg_installed "$1"; then echo "$1 installed"; return 0; fi
	echo "$1 not installed"; return 1
}

# ---- systemd units (file based, so it works offline and under ROOT) --------

ph_unit_file() {
	for _d in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
		[ -f "$ROOT$_d/$1" ] && { echo "$ROOT$_d/$1"; return 0; }
	done
	return 1
}

ph_unit_enabled() { ls "$ROOT"/etc/systemd/system/*.wants/"$1" >/dev/null 2>&1; }

# ph_unit_enable UNIT: the symlinks `systemctl enable` makes, without
# needing a running systemd; never starts the unit.
ph_unit_enable() {
	_uf=$(ph_unit_file "$1") || { echo "unit $1 not found"; return 1; }
	ph_unit_enabled "$1" && return 0
	for _w in $(sed -n 's/^[[:space:]]*WantedBy[[:space:]]*=//p' "$_uf"); do
		mkdir -p "$ROOT/etc/systemd/system/$_w.wants" &&
			ln -sf "${_uf#"$ROOT"}" "$ROOT/etc/systemd/system/$_w.wants/$1" || return 1
	done
	ph_unit_enabled "$1" || { echo "unit $1 has no WantedBy"; return 1; }
	ph_changed "enabled $1 (at next boot)"
}

# ---- sshd ----------------------------------------------------------------------

PH_SSHD_CONFIG=$ROOT/etc/ssh/sshd_config
# Early in sshd_config.d ordering: sshd keeps the first value it reads.
PH_SSHD_DROPIN=$ROOT/etc/ssh/sshd_config.d/00-phoenix-hardening.conf

ph_sshd_present() {
	[ -f "$PH_SSHD_CONFIG" ] || { echo "no /etc/ssh/sshd_config: openssh-server is not installed"; return 2; }
	# sshd -t and -T refuse to run without the privilege separation
	# directory, which ssh.service makes at start (as Debian's unit does).
	if ph_live && [ ! -d /run/sshd ] && [ -d /run ]; then mkdir -p -m 0755 /run/sshd 2>/dev/null; fi
	return 0
}

# ph_sshd_main_set KEY VALUE: set KEY in the main config before any Match
# block: replace the first active line, drop later ones, else insert it
# before the first directive (so it precedes Include and Match).
ph_sshd_main_set() {
	_t="$PH_TMP/sshd.$$"
	awk -v k="$1" -v new="$1 $2" '
	function kw(line,   s, w) { s = line; sub(/^[ \t]+/, "", s); split(s, w, /[ \t=]+/); return tolower(w[1]) }
	BEGIN { lk = tolower(k) }
	FNR == NR { w = kw($0); if (w == "match") m = 1; if (!m && w == lk) have = 1; next }
	{
		w = kw($0)
		if (w == "match") inm = 1
		if (!inm && w == lk) { if (!done) print new; done = 1; next }
		if (!have && !done && w != "" && substr(w, 1, 1) != "#") { print new; done = 1 }
		print
	}
	END { if (!done) print new }' "$PH_SSHD_CONFIG" "$PH_SSHD_CONFIG" >"$_t" || return 1
	ph_replace_file "$PH_SSHD_CONFIG" "$_t"
}

# ph_sshd -t|-T: sshd's test modes. Without any host key (an image whose
# keys are made at first boot, a chroot, or one the cleanup phase already
# ran on) both refuse to run, so they get a throwaway key in $PH_TMP.
ph_sshd() {
	sshd "$1" 2>"$PH_TMP/sshd.stderr" && return 0
	if grep -q 'no hostkeys available' "$PH_TMP/sshd.stderr" &&
		{ [ -f "$PH_TMP/hostkey" ] || ssh-keygen -q -t ed25519 -N '' -f "$PH_TMP/hostkey" >/dev/null 2>&1; }; then
		sshd "$1" -h "$PH_TMP/hostkey"
		return
	fi
	cat "$PH_TMP/sshd.stderr" >&2
	return 1
}

# ph_sshd_set KEY VALUE: drop-in and main config; `sshd -t` must accept the
# result or both files are restored. sshd is never restarted or reloaded:
# the settings take effect at next boot.
ph_sshd_set() {
	ph_sshd_present || return 2
	cp -p "$PH_SSHD_CONFIG" "$PH_TMP/sshd_config.bak" || return 1
	_had_dropin=
	[ -f "$PH_SSHD_DROPIN" ] && cp -p "$PH_SSHD_DROPIN" "$PH_TMP/dropin.bak" && _had_dropin=1
	_out=$( { ph_set_kv "$PH_SSHD_DROPIN" "$1" "$2" " " && chmod 0600 "$PH_SSHD_DROPIN" && ph_sshd_main_set "$1" "$2"; } 2>&1)
	_rc=$?
	if [ $_rc -eq 0 ] && ph_live && ph_has sshd; then
		_t=$(ph_sshd -t 2>&1) || { _rc=1; _out="$_out
sshd -t rejected $1 $2: $_t"; }
	fi
	if [ $_rc -ne 0 ]; then
		cat "$PH_TMP/sshd_config.bak" >"$PH_SSHD_CONFIG"
		if [ -n "$_had_dropin" ]; then cat "$PH_TMP/dropin.bak" >"$PH_SSHD_DROPIN"; else rm -f "$PH_SSHD_DROPIN"; fi
		printf '%s\nrestored sshd configuration\n' "$_out"
		return 1
	fi
	[ -z "$_out" ] || printf '%s\n' "$_out"
}

# ph_sshd_lines FILE: "file<TAB>line" of each directive in the order sshd
# reads them (Include expanded in place, Match blocks ignored). Includes
# recurse in a subshell so the outer file's variables survive.
ph_sshd_lines() {
	[ -f "$1" ] || return 0
	_lf=${1#"$ROOT"}
	while IFS= read -r _l || [ -n "$_l" ]; do
		set -f; set -- $_l; set +f
		[ $# -gt 0 ] || continue
		case $1 in \#*) continue ;; esac
		case $(printf '%s' "$1" | tr 'A-Z' 'a-z') in
		match) return 0 ;;
		include)
			shift
			for _pat in "$@"; do
				case $_pat in /*) ;; *) _pat=/etc/ssh/$_pat ;; esac
				for _inc in $ROOT$_pat; do [ -f "$_inc" ] && (ph_sshd_lines "$_inc"); done
			done ;;
		*) printf '%s\t%s\n' "$_lf" "$*" ;;
		esac
	done <"$1"
}

# ph_sshd_parse FILE: the effective "keyword value" lines of a config as
# sshd reads it (first value wins, Include expanded in place, Match blocks
# ignored, "Keyword=value" too), for hosts where `sshd -T` cannot run
# (fixtures).
ph_sshd_parse() {
	ph_sshd_lines "$1" | awk -F '\t' '{ k = $2; sub(/[ \t=].*/, "", k); v = $2; sub(/^[^ \t=]+[ \t]*=?[ \t]*/, "", v); print tolower(k) " " v }'
}

# ph_sshd_origin KEY: where a failed check's value comes from: the first
# line that sets KEY (sshd keeps the first value it reads), so an
# overriding drop-in is named.
ph_sshd_origin() {
	_o=$(ph_sshd_lines "$PH_SSHD_CONFIG" | awk -F '\t' -v k="$1" '{ split($2, w, /[ \t=]+/) } tolower(w[1]) == k { print $1 ": " $2; exit }')
	if [ -n "$_o" ]; then printf '; set by %s' "$_o"; else printf '; no file sets it: the default applies'; fi
}

# ph_sshd_load: the effective config into $PH_TMP/sshd.eff, its source in
# PH_SSHD_SRC. `sshd -T` is authoritative: drop-ins, Include order and
# defaults are all resolved by sshd itself.
ph_sshd_load() {
	ph_sshd_present || return 2
	if ph_live && ph_has sshd && ph_sshd -T >"$PH_TMP/sshd.eff" 2>"$PH_TMP/sshd.err"; then
		PH_SSHD_SRC="sshd -T"
		return 0
	fi
	if ph_live && ph_has sshd; then
		PH_SSHD_SRC="parsed config files; sshd -T failed: $(head -n 1 "$PH_TMP/sshd.err")"
	else
		PH_SSHD_SRC="parsed config files; sshd -T unavailable"
	fi
	ph_sshd_parse "$PH_SSHD_CONFIG" | awk '!seen[$1]++' >"$PH_TMP/sshd.eff"
}

# ph_sshd_value KEY [DEFAULT]: effective value (lower-case keyword lookup);
# sshd -T prints list keywords such as allowusers once per item, so all
# lines of the keyword are joined with spaces.
ph_sshd_value() {
	_v=$(awk -v k="$1" 'tolower($1) == k { $1 = ""; sub(/^ /, ""); v = v (v == "" ? "" : " ") $0 } END { print v }' "$PH_TMP/sshd.eff")
	[ -n "$_v" ] || _v=$2
	printf '%s' "$_v"
}

# ph_sshd_expect KEY WANT [DEFAULT]: case-insensitive equality.
ph_sshd_expect() {
	_v=$(ph_sshd_value "$1" "$3")
	_lv=$(printf '%s' "$_v" | tr 'A-Z' 'a-z'); _lw=$(printf '%s' "$2" | tr 'A-Z' 'a-z')
	if [ "$_lv" = "$_lw" ]; then echo "$1 $_v ($PH_SSHD_SRC)"; return 0; fi
	echo "$1 is '${_v:-unset}', want '$2' ($PH_SSHD_SRC)$(ph_sshd_origin "$1")"; return 1
}

# ph_sshd_expect_max KEY MAX [DEFAULT]: numeric value in 1..MAX.
ph_sshd_expect_max() {
	_v=$(ph_sshd_value "$1" "$3")
	case $_v in ''|*[!0-9]*) echo "$1 is '${_v:-unset}', want 1..$2 ($PH_SSHD_SRC)$(ph_sshd_origin "$1")"; return 1 ;; esac
	if [ "$_v" -ge 1 ] && [ "$_v" -le "$2" ]; then echo "$1 $_v ($PH_SSHD_SRC)"; return 0; fi
	echo "$1 is $_v, want 1..$2 ($PH_SSHD_SRC)$(ph_sshd_origin "$1")"; return 1
}

# ph_sshd_expect_none KEY PATTERN...: no comma-separated item of the value
# matches a shell PATTERN.
ph_sshd_expect_none() {
	_k=$1; shift
	_v=$(ph_sshd_value "$_k")
	[ -n "$_v" ] || { echo "$_k not set, OpenSSH defaults apply ($PH_SSHD_SRC)"; return 0; }
	_bad=
	_ifs=$IFS; IFS=,
	for _a in $_v; do for _p in "$@"; do case $_a in $_p) _bad="$_bad $_a" ;; esac; done; done
	IFS=$_ifs
	if [ -n "$_bad" ]; then echo "$_k allows weak:$_bad ($PH_SSHD_SRC)$(ph_sshd_origin "$_k")"; return 1; fi
	echo "$_k $_v ($PH_SSHD_SRC)"
}

# ---- sysctl ------------------------------------------------------------------

PH_SYSCTL_FILE=$ROOT/etc/sysctl.d/99-phoenix-hardening.conf
PH_PROC_SYS=$ROOT/proc/sys

# ph_sysctl_files: every file systemd-sysctl and `sysctl --system` read, in
# the order they are applied (later assignments win): *.conf by file name
# across the directories (an earlier directory masks the same name in a
# later one), then /etc/sysctl.conf.
ph_sysctl_files() {
	for _d in /etc/sysctl.d /run/sysctl.d /usr/local/lib/sysctl.d /usr/lib/sysctl.d /lib/sysctl.d; do
		for _f in "$ROOT$_d"/*.conf; do [ -f "$_f" ] && printf '%s/%s\n' "${_f##*/}" "$_f"; done
	done | awk -F/ '!seen[$1]++' | LC_ALL=C sort -t/ -k1,1 | cut -d/ -f2-
	[ -f "$ROOT/etc/sysctl.conf" ] && echo "$ROOT/etc/sysctl.conf"
}

# ph_sysctl_persisted KEY: "value<TAB>file" of the last assignment.
ph_sysctl_persisted() {
	ph_sysctl_files >"$PH_TMP/sysctl.files"
	[ -s "$PH_TMP/sysctl.files" ] || return 0
	# shellcheck disable=SC2046
	awk -v k="$1" '
	{
		s = $0; sub(/^[ \t]+/, "", s); sub(/^-/, "", s)
		if (s ~ /^[#;]/ || index(s, "=") == 0) next
		key = substr(s, 1, index(s, "=") - 1); val = substr(s, index(s, "=") + 1)
		gsub(/[ \t]+$/, "", key); gsub(/\//, ".", key)
		sub(/^[ \t]+/, "", val); sub(/[ \t]+$/, "", val)
		if (key == k) { v = val; f = FILENAME }
	}
	END { if (f != "") printf "%s\t%s\n", v, f }' $(cat "$PH_TMP/sysctl.files")
}

ph_sysctl_live_path() { printf '%s/%s' "$PH_PROC_SYS" "$(printf '%s' "$1" | tr . /)"; }

# ph_sysctl_apply KEY=VALUE...: persist, then best effort live.
ph_sysctl_apply() {
	for _kv in "$@"; do
		_k=${_kv%%=*}; _v=${_kv#*=}
		ph_set_kv "$PH_SYSCTL_FILE" "$_k" "$_v" " = " || return 1
		_pv=$(ph_sysctl_persisted "$_k")
		case $_pv in
		"$_v	"*) ;;
		*) echo "note: $(printf '%s' "$_pv" | cut -f2- | sed "s|^$ROOT||") sets $_k after phoenix's file; change it or the check fails" ;;
		esac
		_p=$(ph_sysctl_live_path "$_k")
		[ -f "$_p" ] || continue
		[ "$(cat "$_p" 2>/dev/null)" = "$_v" ] && continue
		if [ -z "$PHOENIX_SYSCTL_READONLY" ] && (printf '%s\n' "$_v" >"$_p") 2>/dev/null; then
			ph_changed "live $_k = $_v"
		else
			echo "live $_k not set (kernel read-only); takes effect at boot"
		fi
	done
}

# ph_sysctl_check KEY=VALUE...: the persisted value (effective order of all
# files) must match, so a later file overriding it fails. The live value
# must match too where the kernel lets it change; where /proc/sys is
# read-only the difference is evidence only.
ph_sysctl_check() {
	_rc=0
	for _kv in "$@"; do
		_k=${_kv%%=*}; _v=${_kv#*=}
		_pv=$(ph_sysctl_persisted "$_k")
		_pval=$(printf '%s' "$_pv" | cut -f1); _pfile=$(printf '%s' "$_pv" | cut -f2-)
		_pfile=${_pfile#"$ROOT"}
		if [ -z "$_pv" ]; then
			echo "$_k not persisted in any sysctl file, want $_v"; _rc=1; continue
		fi
		_pn=$(printf '%s' "$_pval" | tr -s ' \t' ' '); _vn=$(printf '%s' "$_v" | tr -s ' \t' ' ')
		if [ "$_pn" != "$_vn" ]; then
			echo "$_k persisted $_pval by $_pfile, want $_v"; _rc=1; continue
		fi
		_p=$(ph_sysctl_live_path "$_k")
		if [ ! -r "$_p" ]; then
			echo "$_k = $_v persisted ($_pfile); live value unavailable"
			continue
		fi
		_lv=$(tr -s ' \t' ' ' <"$_p")
		if [ "$_lv" = "$_vn" ]; then
			echo "$_k = $_v persisted ($_pfile) and live"
		elif [ -n "$PHOENIX_SYSCTL_READONLY" ] || [ ! -w "$_p" ]; then
			echo "$_k = $_v persisted ($_pfile); live value $_lv differs (kernel read-only)"
		else
			echo "$_k = $_v persisted ($_pfile); live value $_lv differs and /proc/sys is writable"; _rc=1
		fi
	done
	return $_rc
}

# ---- kernel modules ----------------------------------------------------------

PH_MODPROBE_FILE=$ROOT/etc/modprobe.d/phoenix-hardening.conf

# ph_module_disable_apply MODULE [PROGRAM]: `install MODULE PROGRAM`
# (default /bin/false) and `blacklist MODULE`.
ph_module_disable_apply() {
	ph_set_kv "$PH_MODPROBE_FILE" "install $1" "${2:-/bin/false}" " " &&
		ph_set_kv "$PH_MODPROBE_FILE" "blacklist $1" "" ""
}

# ph_module_disable_check MODULE: an `install MODULE /bin/false` (or true)
# in modprobe.d, confirmed by `modprobe -n -v` when live, and not loaded.
ph_module_disable_check() {
	_inst=$(cat "$ROOT"/etc/modprobe.d/*.conf "$ROOT"/usr/lib/modprobe.d/*.conf 2>/dev/null |
		awk -v m="$1" '$1 == "install" && $2 == m { v = $3 } END { print v }')
	_rc=0
	case $_inst in
	*/false|*/true) _ev="install $1 $_inst" ;;
	*) _ev="no 'install $1 /bin/false' in modprobe.d"; _rc=1 ;;
	esac
	if ph_live && ph_has modprobe; then
		_mp=$(modprobe -n -v "$1" 2>&1 | head -n 1)
		_ev="$_ev; modprobe -n -v: ${_mp:-nothing}"
	fi
	if grep -q "^$(printf '%s' "$1" | tr - _) " "$ROOT/proc/modules" 2>/dev/null; then
		_ev="$_ev; loaded now (unloads at next boot)"
	fi
	echo "$_ev"
	return $_rc
}

# ---- accounts ----------------------------------------------------------------

PH_LOGIN_DEFS=$ROOT/etc/login.defs

ph_login_defs_check() { # KEY OP VALUE (OP: eq, le, ge)
	_v=$(ph_get_kv "$PH_LOGIN_DEFS" "$1")
	case $_v in ''|*[!0-9]*) [ "$2" = eq ] || { echo "$1 is '${_v:-unset}' in /etc/login.defs"; return 1; } ;; esac
	case $2 in
	eq) [ "$_v" = "$3" ] ;;
	le) [ "$_v" -le "$3" ] && [ "$_v" -gt 0 ] ;;
	ge) [ "$_v" -ge "$3" ] ;;
	esac && { echo "$1 $_v in /etc/login.defs"; return 0; }
	echo "$1 is '${_v:-unset}' in /etc/login.defs, want $2 $3"; return 1
}

# ph_umask_check: every active umask line of login shells' configuration
# is at least as strict as 027, and one is there.
ph_umask_check() {
	_u=$(for _f in "$ROOT/etc/profile" "$ROOT"/etc/profile.d/*.sh "$ROOT/etc/bash.bashrc"; do
		[ -f "$_f" ] && awk -v f="${_f#"$ROOT"}" '{ sub(/#.*/, "") } $1 == "umask" && $2 ~ /^[0-7]+$/ { print f, $2 }' "$_f"
	done)
	[ -n "$_u" ] || { echo "no umask in /etc/profile, /etc/profile.d or /etc/bash.bashrc"; return 1; }
	_bad=$(printf '%s\n' "$_u" | while read -r _f _m; do [ $(( 0$_m & 027 )) -eq $(( 027 )) ] || printf ' %s (%s)' "$_m" "$_f"; done)
	if [ -n "$_bad" ]; then echo "umask laxer than 027:$_bad"; return 1; fi
	echo "umask in login shells: $(printf '%s\n' "$_u" | tr '\n' ';' | sed 's/;$//')"
}

# ph_login_homes: "user uid home" for the login accounts (root and UID_MIN and
# up, a shell that is not nologin or false) whose home is not /.
ph_login_homes() {
	_min=$(ph_get_kv "$PH_LOGIN_DEFS" UID_MIN); _min=${_min:-1000}
	awk -F: -v min="$_min" '($3 == 0 || ($3 >= min && $3 != 65534)) && $6 != "" && $6 != "/" && $7 !~ /(nologin|false)$/ { print $1, $3, $6 }' "$ROOT/etc/passwd" 2>/dev/null
}

# ph_opted_in VALUE NAME: false (with why) when a package param opts out.
ph_opted_in() {
	ph_is_true "$1" && return 0
	echo "$2 = false: opted out"; return 1
}

# ph_banner_apply FILE: FILE holds the banner_text param; not applicable
# when it is empty.
ph_banner_apply() {
	[ -n "$PARAM_banner_text" ] || { echo "param banner_text is empty"; return 2; }
	printf '%s\n' "$PARAM_banner_text" >"$PH_TMP/banner"
	ph_replace_file "$ROOT$1" "$PH_TMP/banner" || return 1
	ph_perm_apply "$ROOT$1" 0644 root root
}

# ph_banner_check FILE: FILE is there, 0644 root:root at most, not empty,
# and names neither the OS nor getty escapes that print it (CIS 1.6).
ph_banner_check() {
	[ -n "$PARAM_banner_text" ] || { echo "param banner_text is empty"; return 2; }
	[ -s "$ROOT$1" ] || { echo "$1 is missing or empty"; return 1; }
	_rc=0
	ph_perm_check "$ROOT$1" 0644 root root || _rc=1
	_os=$(printf "%s" "${PH_OS_ID:-unknown-os}" | tr -d "\"")
	_bad=$(grep -Eio "\\\\[mrsv]|$_os" "$ROOT$1" | sort -u | tr '\n' ' ')
	if [ -n "$_bad" ]; then echo "$1 shows: $_bad"; _rc=1; else echo "$1: $(head -c 60 "$ROOT$1" | head -n 1)…"; fi
	return $_rc
}

# ph_homes: "user home" for every account with a home directory.
ph_homes() {
	awk -F: '$6 != "" { print $1, $6 }' "$ROOT/etc/passwd" 2>/dev/null
}

# ph_authorized_keys_files: every file sshd would read keys from, for every
# account: AuthorizedKeysFile from the effective config (%h, %u, %% and
# paths relative to the home expanded), plus the OpenSSH defaults.
ph_authorized_keys_files() {
	_akf=
	if ph_sshd_load >/dev/null 2>&1; then _akf=$(ph_sshd_value authorizedkeysfile); fi
	ph_homes | while read -r _u _h; do
		for _p in .ssh/authorized_keys .ssh/authorized_keys2 $_akf; do
			case $_p in none) continue ;; esac
			_p=$(printf '%s\n' "$_p" | awk -v u="$_u" -v h="$_h" '{
				out = ""; s = $0
				while ((i = index(s, "%")) > 0) {
					c = substr(s, i + 1, 1); out = out substr(s, 1, i - 1)
					if (c == "h") out = out h; else if (c == "u") out = out u; else if (c == "%") out = out "%"; else out = out "%" c
					s = substr(s, i + 2)
				}
				print out s
			}')
			case $_p in /*) ;; *) _p=$_h/$_p ;; esac
			printf '%s%s\n' "$ROOT" "$_p"
		done
	done | sort -u
}

# ---- cleanup helpers -----------------------------------------------------------

# ph_remove PATH...: remove what exists, reporting each removal.
ph_remove() {
	for _r in "$@"; do
		[ -e "$_r" ] || [ -L "$_r" ] || continue
		rm -rf "$_r" && ph_changed "removed ${_r#"$ROOT"}"
	done
}

# ph_absent_check PATH...: fail listing whatever still exists.
ph_absent_check() {
	_left=
	for _r in "$@"; do { [ -e "$_r" ] || [ -L "$_r" ]; } && _left="$_left ${_r#"$ROOT"}"; done
	if [ -n "$_left" ]; then echo "still present:$_left"; return 1; fi
	return 0
}

# ---- journald -------------------------------------------------------------------

# ph_journald_check KEY VALUE: the effective [Journal] setting: journald.conf,
# then drop-ins from every journald.conf.d sorted by name, later wins.
ph_journald_check() {
	[ -d "$ROOT/etc/systemd" ] || { echo "systemd is not installed"; return 2; }
	_files=$(
		[ -f "$ROOT/etc/systemd/journald.conf" ] && echo "journald.conf/$ROOT/etc/systemd/journald.conf"
		for _d in /etc/systemd/journald.conf.d /run/systemd/journald.conf.d /usr/local/lib/systemd/journald.conf.d /usr/lib/systemd/journald.conf.d; do
			for _f in "$ROOT$_d"/*.conf; do [ -f "$_f" ] && printf '~%s/%s\n' "${_f##*/}" "$_f"; done
		done | awk -F/ '!seen[$1]++' | LC_ALL=C sort -t/ -k1,1
	)
	_r=$(printf '%s\n' "$_files" | cut -d/ -f2- | while IFS= read -r _f; do
		[ -n "$_f" ] && awk -v k="$1" -v f="${_f#"$ROOT"}" '
			/^[ \t]*\[/ { sec = $0; gsub(/[ \t\[\]]/, "", sec); next }
			sec == "Journal" && index($0, "=") {
				key = substr($0, 1, index($0, "=") - 1); gsub(/[ \t]/, "", key)
				if (key == k) { v = substr($0, index($0, "=") + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); print v "\t" f }
			}' "$_f"
	done | tail -n 1)
	_v=$(printf '%s' "$_r" | cut -f1); _src=$(printf '%s' "$_r" | cut -f2)
	if [ "$_v" = "$2" ]; then echo "$1=$_v ($_src)"; return 0; fi
	echo "$1 is '${_v:-default}'${_src:+ by $_src}, want $2"; return 1
}

# ---- auditd ---------------------------------------------------------------------

ph_audit_rules() {
	cat <<'PH_RULES'
-w /etc/passwd -p wa -k identity
-w /etc/group -p wa -k identity
-w /etc/shadow -p wa -k identity
-w /etc/gshadow -p wa -k identity
-w /etc/security/opasswd -p wa -k identity
-w /etc/sudoers -p wa -k scope
-w /etc/sudoers.d -p wa -k scope
-w /var/log/sudo.log -p wa -k sudo_log_file
-a always,exit -F arch=b64 -S adjtimex -S settimeofday -S clock_settime -k time-change
-w /etc/localtime -p wa -k time-change
-w /var/log/lastlog -p wa -k logins
-w /var/run/faillock -p wa -k logins
-w /var/run/utmp -p wa -k session
-w /var/log/wtmp -p wa -k session
-w /var/log/btmp -p wa -k session
-w /etc/hosts -p wa -k system-locale
-w /etc/hostname -p wa -k system-locale
PH_RULES
}

# ph_aide_audit_tools_rules: AIDE lines that guard the audit tools with
# SHA-512 (CIS 6.3.3).
ph_aide_audit_tools_rules() {
	echo 'PhoenixAuditTools = p+i+n+u+g+s+b+acl+xattrs+sha512'
	for _t in auditctl auditd ausearch aureport autrace augenrules; do echo "/sbin/$_t PhoenixAuditTools"; done
}

# ph_coredump_check KEY VALUE: systemd-coredump's effective [Coredump]
# setting (coredump.conf, then drop-ins by name, later wins).
ph_coredump_check() {
	_v=$(for _f in "$ROOT/etc/systemd/coredump.conf" $(ls "$ROOT"/usr/lib/systemd/coredump.conf.d/*.conf "$ROOT"/etc/systemd/coredump.conf.d/*.conf 2>/dev/null | awk -F/ '{ print $NF "/" $0 }' | LC_ALL=C sort | cut -d/ -f2-); do
		[ -f "$_f" ] && awk -F= -v k="$1" '/^[ \t]*\[/ { s = $0; gsub(/[ \t\[\]]/, "", s) } s == "Coredump" && $1 == k { print $2 }' "$_f"
	done | tail -n 1)
	if [ "$_v" = "$2" ]; then echo "systemd-coredump $1=$_v"; return 0; fi
	echo "systemd-coredump $1 is '${_v:-default}', want $2"; return 1
}

# ph_hostkeys_unit: a unit that makes missing host keys before sshd starts,
# for images whose instances have no cloud-init to do it.
ph_hostkeys_unit() {
	_u=$ROOT/etc/systemd/system/phoenix-ssh-host-keys.service
	[ -d "$ROOT/etc/systemd" ] || { echo "no systemd: host keys must be made at boot by other means"; return 0; }
	cat >"$PH_TMP/hostkeys.unit" <<'PH_UNIT'
[Unit]
Description=Make missing SSH host keys (phoenix-harden cleanup)
Before=ssh.service sshd.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service sshd.service
PH_UNIT
	ph_replace_file "$_u" "$PH_TMP/hostkeys.unit" || return 1
	for _w in multi-user.target ssh.service sshd.service; do
		[ -L "$ROOT/etc/systemd/system/$_w.wants/phoenix-ssh-host-keys.service" ] && continue
		mkdir -p "$ROOT/etc/systemd/system/$_w.wants" &&
			ln -sf /etc/systemd/system/phoenix-ssh-host-keys.service "$ROOT/etc/systemd/system/$_w.wants/phoenix-ssh-host-keys.service" || return 1
	done
}
