#!/bin/sh
# `make test`: every check in order, each one's output shown, then one line
#   emtun: N passed, N failed, N skipped
# counting test cases where a step runs a test runner (cargo test, unittest)
# and one per step otherwise. Any failed step fails the run (exit 1); a step
# whose tool is missing is a skip, said in its own line and in the total.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
MAKE=${MAKE:-make}
LOG=$ROOT/target/test-logs
mkdir -p "$LOG"
pass=0 fail=0 skip=0 failed_steps=""

count_cargo() { # sums "test result: ok. P passed; F failed; I ignored"
	awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
	     END { printf "%d %d %d\n", p, f, s }' "$1"
}
count_unittest() { # "Ran N tests" and "FAILED (failures=a, errors=b, skipped=c)" / "OK (skipped=c)"
	awk '/^Ran [0-9]+ test/ { n += $2 }
	     /^(OK|FAILED)/ { line = $0; while (match(line, /(failures|errors|skipped)=[0-9]+/)) { kv = substr(line, RSTART, RLENGTH); split(kv, a, "="); c[a[1]] += a[2]; line = substr(line, RSTART + RLENGTH) } }
	     END { f = c["failures"] + c["errors"]; printf "%d %d %d\n", n - f - c["skipped"], f, c["skipped"] }' "$1"
}

# step NAME KIND TARGET: KIND is cargo, unittest or step.
step() {
	name=$1 kind=$2 target=$3 out=$LOG/$1.log
	echo "==> $name (make $target)"
	$MAKE -s "$target" >"$out" 2>&1
	rc=$?
	cat "$out"
	if grep -q '^SKIP: ' "$out" && [ $rc -eq 0 ]; then
		skip=$((skip + 1)); echo "--> $name: skipped"; return
	fi
	case $kind in
	cargo) set -- $(count_cargo "$out") ;;
	unittest) set -- $(count_unittest "$out") ;;
	*) set -- 0 0 0 ;;
	esac
	p=$1 f=$2 s=$3
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi  # a build or runner failure
	if [ "$kind" = step ] && [ $rc -eq 0 ]; then p=1; fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
	if [ $rc -ne 0 ]; then
		failed_steps="$failed_steps $name"; echo "--> $name: FAILED (exit $rc)"
	else
		echo "--> $name: ok"
	fi
}

step fmt step fmt-check
step clippy step clippy
step clippy-freebsd step clippy-freebsd
step docs step docs
step cargo-test cargo cargo-test
step miri cargo miri
step harness-unit unittest harness-unit
step pkg-unit unittest pkg-unit
step man-lint step man-lint
step freebsd-build step freebsd
step vm-test step vm-test

[ -n "$failed_steps" ] && echo "failed steps:$failed_steps (logs in target/test-logs/)"
echo "emtun: $pass passed, $fail failed, $skip skipped"
[ -z "$failed_steps" ]
