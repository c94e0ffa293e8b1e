#!/bin/sh
# emtun VM end-to-end test (issue 5). Entry point of `make vm-test IMAGE=path/to/disk.img`.
#   tests/vm/run.sh [IMAGE]         IMAGE may also come from the environment.
# Environment (all optional):
#   IMAGE=disk.img      FreeBSD 14 amd64 raw disk with the kmod-patch kernel (see tests/vm/README.md)
#   ACCEL=tcg|kvm       QEMU accelerator (default tcg: a /dev/kvm may exist that cannot run FreeBSD)
#   SCENARIOS=baseline,tunneled,crash,watchdog,ctl,soak,bench,hcrash,hwatchdog,noflap,state,mixsoak,bridge,
#             htx,wakeups,f1,f2,f3,f4,f5,f6,f7,f8,f9,service   (default: all; F1..F9 = issue 13's field cases, either case)
#   F1_PKTS=N (pkt-gen -n; default 2000000 kvm, 300000 tcg)  F7_CYCLES=30  F8_RUNS=30
#   SIZE_MB=100  SOAK_CYCLES=20  BENCH_PAIRS=20000  PP_COUNT=20000  WAKEUPS_IDLE_S=10
#   NIC=e1000|e1000e    DUT_SMP=2  PEER_SMP=1  MEM=1024
#   TUNNEL=auto|emtunctl|fwd  tunnel binary (auto: emtunctl run when built, else the fwd example)
#   WATCHDOG_US_RUN=N  watchdog_us for tunnels outside the watchdog/soak scenarios (default 10000 kvm, 2000000 tcg)
#   VM_BIN_DIR=dir      use prebuilt FreeBSD binaries (emtunctl fwd pingpong probe) instead of building
#   VM_OUT=dir          where reports go (default target/vm-test/<timestamp>)
#   QEMU=qemu-system-x86_64
#   ICOUNT=SHIFT        TCG: the DUT runs with -icount shift=SHIFT,sleep=on (or -icount ICOUNT when it
#                       holds a '='), -accel tcg,thread=single (default off; see tests/vm/README.md)
#   BENCH=1             the benchmark (tests/vm/bench.py, `make vm-bench`) instead of the scenarios:
#                       SCENARIOS=pairs,tcp,anchor MODES=kernel_udp,user_busy,... RUNS=5 (3 with
#                       ICOUNT) WINDOW=64
#                       RATE=0 (0: half the slowest saturation) BURST=1 (pings due together at the fixed
#                       rate) SAT_SECS=10 (0: none) FIXED_SECS=20 SIZE_MB=20
#                       DUT_SMP=1
# Exit: 0 all scenarios passed (or SKIP without an image), 1 a scenario failed, 2 setup error.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
IMAGE=${1:-${IMAGE:-}}
if [ -z "$IMAGE" ]; then
	echo "SKIP: no FreeBSD image given (IMAGE=path/to/disk.img); see tests/vm/README.md"
	exit 0
fi
die() { echo "vm-test: $*" >&2; exit 2; }
[ -f "$IMAGE" ] || die "image not found: $IMAGE"
IMAGE=$(cd "$(dirname "$IMAGE")" && pwd)/$(basename "$IMAGE")
QEMU=${QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || die "$QEMU not found (Debian: apt-get install qemu-system-x86)"
command -v mkfs.vfat >/dev/null || die "mkfs.vfat not found (apt-get install dosfstools)"
command -v mcopy >/dev/null || die "mcopy not found (apt-get install mtools)"
ACCEL=${ACCEL:-tcg}
OUT=${VM_OUT:-$ROOT/target/vm-test/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
T=x86_64-unknown-freebsd

if [ -n "${VM_BIN_DIR:-}" ]; then
	BIN=$VM_BIN_DIR
else
	echo "vm-test: building the FreeBSD binaries (cargo zigbuild --target $T)"
	(cd "$ROOT" && cargo zigbuild --release --target $T --workspace --examples --bins) \
		|| die "cargo zigbuild of the workspace failed"
	CARGO_TARGET_DIR="$ROOT/target/vm-probe" cargo zigbuild --release --target $T \
		--manifest-path "$HERE/probe/Cargo.toml" || die "cargo zigbuild of tests/vm/probe failed"
	BIN=$OUT/bin
	rm -rf "$BIN"; mkdir -p "$BIN"
	R=$ROOT/target/$T/release
	for f in "$R"/emtunctl "$R"/examples/fwd "$R"/examples/pingpong "$ROOT/target/vm-probe/$T/release/probe"; do
		[ -f "$f" ] && cp "$f" "$BIN/"
	done
	# other example binaries (no hashed duplicates)
	for f in "$R"/examples/*; do
		n=$(basename "$f")
		case $n in *-*|*.*) continue;; esac
		[ -x "$f" ] && [ ! -e "$BIN/$n" ] && cp "$f" "$BIN/"
	done
fi
echo "vm-test: guest binaries: $(ls "$BIN" | tr '\n' ' ')"

# the data disk: FAT, made without root or mounts
D=$OUT/data
rm -rf "$D"; mkdir -p "$D/emtun/bin"
cp "$BIN"/* "$D/emtun/bin/"
cp "$HERE/guest/g.sh" "$D/emtun/"
# the service scenario installs these as make install does
mkdir -p "$D/emtun/pkg"
cp "$ROOT/pkg/freebsd/net/emtun/files/emtun.in" "$ROOT/pkg/devd/emtun.conf" "$D/emtun/pkg/"
KB=$(du -sk "$D" | cut -f1)
KB=$(( KB * 12 / 10 + 8192 ))
rm -f "$OUT/data.img"
mkfs.vfat -n EMTUN -C "$OUT/data.img" $KB >/dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$OUT/data.img" "$D/emtun" ::/

if [ -n "${BENCH:-}" ]; then
	# make vm-bench: the benchmark (tests/vm/bench.py) on the same VMs; DUT one vCPU. ICOUNT=SHIFT
	# (or a full -icount spec) runs the DUT under instruction counting (TCG only); off by default:
	# on QEMU 7.2 the image does not get past the BIOS under -icount. Without it, 5 runs per mode.
	IC=${ICOUNT:-off}
	[ "$IC" = off ] || [ "$ACCEL" != tcg ] && IC=
	RUNS=${RUNS:-$([ -n "$IC" ] && echo 3 || echo 5)}
	echo "vm-bench: image $IMAGE, accel $ACCEL${IC:+ (DUT: -icount shift=$IC)}, reports in $OUT"
	exec python3 "$HERE/bench.py" --image "$IMAGE" --data "$OUT/data.img" --out "$OUT" --accel "$ACCEL" \
		--qemu "$QEMU" --nic "${NIC:-e1000}" --mem "${MEM:-1024}" --dut-smp "${DUT_SMP:-1}" --peer-smp "${PEER_SMP:-1}" \
		--scenarios "${SCENARIOS:-pairs,tcp,anchor}" --size-mb "${SIZE_MB:-20}" --runs "$RUNS" \
		--window "${WINDOW:-64}" --rate "${RATE:-0}" --burst "${BURST:-1}" --sat-secs "${SAT_SECS:-10}" --fixed-secs "${FIXED_SECS:-20}" \
		${MODES:+--modes "$MODES"} ${IC:+--icount "$IC"} --watchdog-us-run "${WATCHDOG_US_RUN:-0}"
fi
echo "vm-test: image $IMAGE, accel $ACCEL, reports in $OUT"
exec python3 "$HERE/harness.py" --image "$IMAGE" --data "$OUT/data.img" --out "$OUT" --accel "$ACCEL" \
	--qemu "$QEMU" --nic "${NIC:-e1000}" --mem "${MEM:-1024}" --dut-smp "${DUT_SMP:-2}" --peer-smp "${PEER_SMP:-1}" \
	--scenarios "${SCENARIOS:-baseline,tunneled,crash,watchdog,ctl,soak,bench,hcrash,hwatchdog,noflap,state,mixsoak,bridge,htx,wakeups,f1,f2,f3,f4,f5,f6,f7,f8,f9,service}" --size-mb "${SIZE_MB:-100}" \
	--soak-cycles "${SOAK_CYCLES:-20}" --bench-pairs "${BENCH_PAIRS:-20000}" --pp-count "${PP_COUNT:-20000}" \
	--watchdog-us-run "${WATCHDOG_US_RUN:-0}" --tunnel "${TUNNEL:-auto}" \
	--mixsoak-cycles "${MIXSOAK_CYCLES:-100}" --noflap-cycles "${NOFLAP_CYCLES:-10}" --hwd-runs "${HWD_RUNS:-3}" \
	--wakeups-idle-s "${WAKEUPS_IDLE_S:-10}" \
	--f1-pkts "${F1_PKTS:-0}" --f7-cycles "${F7_CYCLES:-30}" --f8-runs "${F8_RUNS:-30}" \
	${ICOUNT:+--icount "$ICOUNT"}
