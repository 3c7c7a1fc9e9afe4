# ---- phoenix-harden runner ---------------------------------------------------

ph_now() {
	if [ -r /proc/uptime ]; then read -r _up _ </proc/uptime; echo "$_up"; else date +%s; fi
}
ph_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ph_detect: PH_DISTRO (debian-12, ubuntu-24.04, amzn-2023, ...) and
# PH_FAMILY (deb or rpm) from /etc/os-release.
ph_detect() {
	_osr=$ROOT/etc/os-release
	[ -f "$_osr" ] || _osr=$ROOT/usr/lib/os-release
	PH_OS_ID=$(sed -n 's/^ID=//p' "$_osr" 2>/dev/null | tr -d '"'"'")
	PH_OS_VERSION=$(sed -n 's/^VERSION_ID=//p' "$_osr" 2>/dev/null | tr -d '"'"'")
	_like=$(sed -n 's/^ID_LIKE=//p' "$_osr" 2>/dev/null | tr -d '"'"'")
	PH_DISTRO=$PH_OS_ID-$PH_OS_VERSION
	case " $PH_OS_ID $_like " in
	*" debian "*|*" ubuntu "*) PH_FAMILY=deb ;;
	*" fedora "*|*" rhel "*|*" amzn "*|*" centos "*) PH_FAMILY=rpm ;;
	*) PH_FAMILY=unknown ;;
	esac
}

ph_begin() {
	PH_START=$(ph_now)
	PH_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	ph_detect
	PH_SUPPORTED=false
	case " $PH_DISTROS " in *" $PH_DISTRO "*) PH_SUPPORTED=true ;; esac
	[ $PH_SUPPORTED = true ] || echo "phoenix-harden: warning: $PH_DISTRO is not one of $PH_DISTROS; controls without a distros list run anyway"
	# Verify mode works in /run (PH_DIR), which a tmpfs keeps out of the
	# image; say so when it is not one (a chroot build, say).
	if [ "$PH_MODE" = verify ] && ph_live &&
		! awk '$2 == "/run" && $3 == "tmpfs" { t = 1 } END { exit !t }' /proc/mounts 2>/dev/null; then
		echo "phoenix-harden: warning: /run is not a tmpfs here, so ${PH_REPORT_FILE#"$ROOT"} stays in the image; remove it before the image is made"
	fi
	mkdir -p "$PH_DIR" || exit 3
	chmod 0755 "$PH_DIR"
	PH_TMP=$PH_DIR/.run.$$
	rm -rf "$PH_TMP"; mkdir -m 0700 "$PH_TMP" || exit 3
	: >"$PH_TMP/controls.json"
	PH_N_PASSED=0 PH_N_FAILED=0 PH_N_SKIPPED=0 PH_N_ERROR=0 PH_N_NA=0 PH_N_WAIVED=0 PH_N_CHANGED=0
	PH_W_PASSED=0 PH_W_APPLICABLE=0 PH_SEP=
	echo "phoenix-harden: $PH_PHASE, mode $PH_MODE, profile $PH_PROFILE, $PH_DISTRO"
}

ph_cleanup_tmp() {
	[ -z "$PH_TMP" ] || rm -rf "$PH_TMP"
	# Only ever the uploaded script itself: never "sh" when read from a pipe.
	case $PH_SELF in
	/*/phoenix-harden*.sh) [ -n "$PHOENIX_KEEP_SCRIPT" ] || rm -f "$PH_SELF" ;;
	esac
}

# ph_pass_apply N DISTROS WAIVER HAS_APPLY PASS: pass 1 runs every
# control's apply, in order, keeping its output, exit code and time for
# ph_run; checks run after all applies, so each check sees the image as all
# controls left it. When a control installed packages, pass 2 runs the
# applies before it once more (they are idempotent), so what the packages
# brought (a cron directory, a config file) gets their settings too; its
# output is added to pass 1's.
PH_LAST_INSTALL=
ph_pass_apply() {
	_n=$1 _distros=$2 _waiver=$3 _has_apply=$4 _pass=$5
	[ -z "$_waiver" ] || return 0
	if [ -n "$_distros" ] && ! case " $_distros " in *" $PH_DISTRO "*) true ;; *) false ;; esac; then return 0; fi
	_out=$PH_TMP/apply.$_n.out
	if [ "$_pass" = 2 ]; then
		[ -n "$PH_LAST_INSTALL" ] && [ "$_n" -lt "$PH_LAST_INSTALL" ] && [ "$(cat "$PH_TMP/apply.$_n.rc" 2>/dev/null)" = 0 ] || return 0
		_out=$PH_TMP/apply.again
	fi
	_t0=$(ph_now)
	if [ "$_has_apply" = 1 ] && [ "$PH_MODE" = apply ]; then
		(ph_apply_"$_n") >"$_out" 2>&1 </dev/null
		echo $? >"$PH_TMP/apply.$_n.rc"
		_t=$(ph_elapsed "$_t0" "$(ph_now)")
		if [ "$_pass" = 1 ]; then
			echo "$_t" >"$PH_TMP/apply.$_n.time"
			! grep -q '^changed: installed ' "$_out" || PH_LAST_INSTALL=$_n
		else
			awk -v a="$(cat "$PH_TMP/apply.$_n.time")" -v b="$_t" 'BEGIN { printf "%.3f\n", a + b }' >"$PH_TMP/apply.$_n.time"
			[ ! -s "$_out" ] || { echo "again, after packages were installed:"; cat "$_out"; } >>"$PH_TMP/apply.$_n.out"
		fi
	fi
}

# ph_run N ID SEVERITY WEIGHT DISTROS WAIVER HAS_APPLY JSON_HEAD CODE_DESC
# (JSON_HEAD and CODE_DESC come JSON-encoded from the renderer)
# Reports control N: its apply from the first pass (exit 2: not
# applicable; other non-zero: error), then its check (0 passed, 1 failed,
# 2 not applicable, other: error).
ph_run() {
	_n=$1 _id=$2 _sev=$3 _w=$4 _distros=$5 _waiver=$6 _has_apply=$7 _head=$8 _cdesc=$9
	_t0=$(ph_now)
	_status= _changed=false _msg= _applylog= _atime=0
	: >"$PH_TMP/apply.out"; : >"$PH_TMP/check.out"
	if [ -n "$_waiver" ]; then
		_status=waived _msg="waived: $_waiver"
	elif [ -n "$_distros" ] && ! case " $_distros " in *" $PH_DISTRO "*) true ;; *) false ;; esac; then
		_status=not_applicable _msg="not applicable to $PH_DISTRO (applies to: $_distros)"
	else
		_arc=0
		if [ -f "$PH_TMP/apply.$_n.rc" ]; then
			mv -f "$PH_TMP/apply.$_n.out" "$PH_TMP/apply.out"
			_arc=$(cat "$PH_TMP/apply.$_n.rc"); _atime=$(cat "$PH_TMP/apply.$_n.time")
			rm -f "$PH_TMP/apply.$_n.rc" "$PH_TMP/apply.$_n.time"
			grep -q '^changed: ' "$PH_TMP/apply.out" && _changed=true
		fi
		if [ $_arc -eq 2 ]; then
			_status=not_applicable _msg="not applicable: $(cat "$PH_TMP/apply.out")"
		else
			(ph_check_"$_n") >"$PH_TMP/check.out" 2>&1 </dev/null
			_crc=$?
			_msg=$(cat "$PH_TMP/check.out")
			case $_crc in
			0) _status=passed ;;
			1) _status=failed ;;
			2) _status=not_applicable _msg="not applicable: $_msg" ;;
			*) _status=error _msg="check exited $_crc: $_msg" ;;
			esac
			if [ $_arc -ne 0 ] && [ "$_status" != not_applicable ]; then
				_status=error _msg="apply exited $_arc: $(cat "$PH_TMP/apply.out")
check: $_msg"
			fi
		fi
	fi
	_t1=$(ph_now)
	case $_status in
	passed) PH_N_PASSED=$((PH_N_PASSED + 1)); PH_W_PASSED=$((PH_W_PASSED + _w)); PH_W_APPLICABLE=$((PH_W_APPLICABLE + _w)); _rs=passed ;;
	failed) PH_N_FAILED=$((PH_N_FAILED + 1)); PH_W_APPLICABLE=$((PH_W_APPLICABLE + _w)); _rs=failed ;;
	error) PH_N_ERROR=$((PH_N_ERROR + 1)); PH_W_APPLICABLE=$((PH_W_APPLICABLE + _w)); _rs=error ;;
	not_applicable) PH_N_NA=$((PH_N_NA + 1)); _rs=skipped ;;
	waived) PH_N_WAIVED=$((PH_N_WAIVED + 1)); _rs=skipped ;;
	esac
	[ "$_changed" = false ] || PH_N_CHANGED=$((PH_N_CHANGED + 1))
	_ch=; [ "$_changed" = false ] || _ch=" (changed)"
	echo "phoenix-harden: $_status $_id$_ch"
	{
		printf '%s%s,"status":"%s","changed":%s,' "$PH_SEP" "$_head" "$_status" "$_changed"
		if [ "$_status" = waived ]; then
			printf '"waiver_data":{"justification":"'; printf '%s' "$_waiver" | ph_json_escape
			printf '","run":false,"skipped_due_to_waiver":true},'
		fi
		printf '"apply_log":"'
		ph_json_escape <"$PH_TMP/apply.out"
		printf '","results":[{"status":"%s","code_desc":"' "$_rs"
		printf '%s' "$_cdesc"
		printf '","message":"'
		printf '%s' "$_msg" | ph_json_escape
		printf '","run_time":%s,"start_time":"%s"}]}\n' "$(awk -v a="$_atime" -v c="$(ph_elapsed "$_t0" "$_t1")" 'BEGIN { printf "%.3f", a + c }')" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >>"$PH_TMP/controls.json"
	PH_SEP=,
}

# ph_lynis_findings KIND FILE: the KIND (warning, suggestion) lines of a
# Lynis report as a JSON array of {"id", "text"}, without repeats.
ph_lynis_findings() {
	printf '['
	sed -n "s/^$1\\[\\]=//p" "$2" 2>/dev/null | awk -F'|' '!seen[$1 FS $2]++' | {
		_s=
		while IFS='|' read -r _id _txt _rest; do
			printf '%s{"id":"' "$_s"; printf '%s' "$_id" | ph_json_escape
			printf '","text":"'; printf '%s' "$_txt" | ph_json_escape; printf '"}'
			_s=,
		done
	}
	printf ']'
}

# ph_audit: Lynis audits the hardened system; its index and findings go
# into the report ("audit" in the phoenix object). Lynis is installed for
# the run when missing (and listed in AUDIT_PACKAGES_FILE for the cleanup
# phase to remove); its report and log stay in $PH_TMP.
PH_AUDIT_JSON=
ph_audit() {
	_t0=$(ph_now)
	_inst=false _err=
	if ! ph_live; then
		_err="not auditing under ROOT"
	elif ! ph_has lynis; then
		if [ "$PH_FAMILY" != deb ]; then
			_err="lynis is not installed, and phoenix installs it from Debian's packages only; install it before this provisioner"
		elif ! ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -o Acquire::Retries=1 -o Acquire::http::Timeout=20 update; then
			_err="apt-get update failed (no network?): $(tail -n 2 "$PH_TMP/pkg.out" | tr '\n' ' ')"
		elif ! ph_pkg_run apt-get -q -o DPkg::Lock::Timeout=300 -y --no-install-recommends install lynis; then
			_err="apt-get install lynis failed: $(tail -n 2 "$PH_TMP/pkg.out" | tr '\n' ' ')"
		else
			_inst=true
			mkdir -p "${PH_AUDIT_PACKAGES_FILE%/*}" && echo lynis >>"$PH_AUDIT_PACKAGES_FILE"
		fi
	fi
	_rep=$PH_TMP/lynis-report.dat
	if [ -z "$_err" ]; then
		echo "phoenix-harden: auditing with Lynis"
		lynis audit system --quick --no-colors --report-file "$_rep" --logfile "$PH_TMP/lynis.log" >"$PH_TMP/lynis.out" 2>&1 ||
			_err="lynis audit system exited $?: $(tail -n 3 "$PH_TMP/lynis.out" | tr '\n' ' ')"
	fi
	_idx=$(sed -n 's/^hardening_index=//p' "$_rep" 2>/dev/null | tail -n 1)
	case $_idx in ''|*[!0-9]*) [ -n "$_err" ] || _err="the Lynis report has no hardening_index"; _idx=-1 ;; esac
	_ver=$(sed -n 's/^lynis_version=//p' "$_rep" 2>/dev/null | tail -n 1)
	PH_AUDIT_JSON=$(
		printf '{"tool":"lynis","version":"'; printf '%s' "$_ver" | ph_json_escape
		printf '","hardening_index":%d,"installed_for_run":%s,"error":"' "$_idx" "$_inst"; printf '%s' "$_err" | ph_json_escape
		printf '","warnings":'; ph_lynis_findings warning "$_rep"
		printf ',"suggestions":'; ph_lynis_findings suggestion "$_rep"
		printf ',"duration":%s}' "$(ph_elapsed "$_t0" "$(ph_now)")"
	)
	if [ -n "$_err" ]; then echo "phoenix-harden: audit failed: $_err"; else echo "phoenix-harden: Lynis hardening index $_idx"; fi
}

# ph_end REPORT_HEAD: write the report to the image copy and, when given,
# to the path in $1; score = passed weight / applicable weight, floored.
ph_end() {
	_score=0
	[ "$PH_W_APPLICABLE" -eq 0 ] || _score=$((PH_W_PASSED * 100 / PH_W_APPLICABLE))
	_dur=$(ph_elapsed "$PH_START" "$(ph_now)")
	_out=$PH_TMP/report.json
	{
		printf '{"platform":{"name":"'; printf '%s' "$PH_OS_ID" | ph_json_escape
		printf '","release":"'; printf '%s' "$PH_OS_VERSION" | ph_json_escape
		printf '"},"profiles":[%s,"controls":[\n' "$PH_PROFILE_HEAD"
		cat "$PH_TMP/controls.json"
		printf '],"status":"loaded"}],'
		printf '"statistics":{"duration":%s,"controls":{"total":%d,"passed":{"total":%d},"failed":{"total":%d},"skipped":{"total":%d}}},' \
			"$_dur" $((PH_N_PASSED + PH_N_FAILED + PH_N_ERROR + PH_N_NA + PH_N_WAIVED)) "$PH_N_PASSED" $((PH_N_FAILED + PH_N_ERROR)) $((PH_N_NA + PH_N_WAIVED))
		printf '"version":"%s",' "$PH_VERSION"
		printf '"phoenix":{"phase":"%s","mode":"%s","profile":"%s","distro":"' "$PH_PHASE" "$PH_MODE" "$PH_PROFILE"
		printf '%s' "$PH_DISTRO" | ph_json_escape
		printf '","supported_distro":%s,"score":%d,"passed_weight":%d,"applicable_weight":%d,' "$PH_SUPPORTED" "$_score" "$PH_W_PASSED" "$PH_W_APPLICABLE"
		printf '"counts":{"passed":%d,"failed":%d,"error":%d,"not_applicable":%d,"waived":%d,"changed":%d},' \
			"$PH_N_PASSED" "$PH_N_FAILED" "$PH_N_ERROR" "$PH_N_NA" "$PH_N_WAIVED" "$PH_N_CHANGED"
		[ -z "$PH_AUDIT_JSON" ] || printf '"audit":%s,' "$PH_AUDIT_JSON"
		printf '"started":"%s","finished":"%s"}}\n' "$PH_STARTED" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	} >"$_out" || exit 3
	chmod 0644 "$_out"
	mv -f "$_out" "$PH_REPORT_FILE" || exit 3
	if [ -n "$PH_REPORT" ] && [ "$PH_REPORT" != "$PH_REPORT_FILE" ]; then
		cp "$PH_REPORT_FILE" "$PH_REPORT" || exit 3
	fi
	_ch="changed $PH_N_CHANGED"
	[ "$PH_MODE" = apply ] || _ch="verified, changed nothing"
	echo "phoenix-harden: score $_score; passed $PH_N_PASSED, failed $PH_N_FAILED, error $PH_N_ERROR, not applicable $PH_N_NA, waived $PH_N_WAIVED; $_ch; report ${PH_REPORT_FILE#"$ROOT"}"
}
