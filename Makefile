# emtun: one em(4) port shared by a netmap application and the kernel stack.
# Portable between GNU make (Linux CI) and make(1) on FreeBSD hosts.
#
#   make run        build and run: the tunnel demo on the in-memory port, or,
#                   on FreeBSD with IFACE=em0, the real tunnel (emtunctl run)
#   make test       setup, then every check with one summary line
#                   (tools/test.sh): fmt, clippy -D warnings (Linux and
#                   FreeBSD targets), docs (-D missing_docs), all tests, miri,
#                   harness and rc.d unit tests, man lint, FreeBSD build of
#                   every binary, VM test (skipped without IMAGE)
#   make setup      what the checks need (tools/setup.sh; a venv, no system pip)
#   make bench      criterion: zero-copy swap vs copy, batch 1..256
#   make freebsd    FreeBSD amd64 binaries (cargo zigbuild off FreeBSD)
#   make vm-test IMAGE=disk.img [ACCEL=tcg|kvm]   FreeBSD VM end-to-end test
#   make vm-bench IMAGE=disk.img [ACCEL=tcg|kvm]  FreeBSD VM benchmark (DUT CPU per
#                   pair, TCP/RTT through the tunnel, stock netmap bridge anchor)
#   make install    (FreeBSD) emtunctl, the examples, the man pages, and the
#                   service: rc.d script, devd rules (install-service alone)
#   make kernel / install-kernel / module   see kmod-patch/Makefile

CARGO?=		cargo
FBSD_TARGET=	x86_64-unknown-freebsd
PREFIX?=	/usr/local
DESTDIR?=
IFACE?=
CLAIM?=		0x88b5
# tools/setup.sh puts zig, cargo-zigbuild and prometheus_client here.
VENV=		target/tools/venv
TOOLPATH=	PATH="$${PWD}/${VENV}/bin:$${PATH}"
PYTHON=		if [ -x ${VENV}/bin/python3 ]; then ${VENV}/bin/python3 "$$@"; else python3 "$$@"; fi
MANPAGES=	ctl/emtunctl.8 kmod-patch/man/netmap_tun.4 pkg/man/emtun.8

.PHONY: all build run test setup fmt-check clippy clippy-freebsd docs cargo-test \
	miri harness-unit pkg-unit lint unit man-lint freebsd bench vm-test vm-bench \
	install install-service uninstall kernel install-kernel module check-patch clean

all: build

build:
	${CARGO} build --release --workspace --bins --examples

run: build
	@if [ -n "${IFACE}" ]; then \
		./target/release/emtunctl run ${IFACE} --claim ${CLAIM}; \
	else \
		${CARGO} run --quiet --release -p emtun --features sim --example memdemo; \
	fi

setup:
	@sh tools/setup.sh

test: setup
	@sh tools/test.sh

fmt-check:
	${CARGO} fmt --all -- --check

clippy:
	${CARGO} clippy --workspace --all-targets --all-features -- -D warnings

clippy-freebsd:
	@if [ "$$(uname -s)" = FreeBSD ]; then \
		echo "SKIP: the native clippy step already checked FreeBSD"; \
	elif ! rustup target list --installed 2>/dev/null | grep -q ${FBSD_TARGET}; then \
		echo "SKIP: the ${FBSD_TARGET} target is not installed (make setup could not add it)"; \
	else \
		${CARGO} clippy --workspace --all-targets --all-features --target ${FBSD_TARGET} -- -D warnings; \
	fi

docs:
	RUSTDOCFLAGS="-D missing_docs -D warnings" ${CARGO} doc --workspace --all-features --no-deps

cargo-test:
	${CARGO} test --workspace --all-features

# The ring code and the simulator under Miri (undefined behaviour, aliasing
# of buffers): netmap-user's tests drive every unsafe block of ring.rs,
# region.rs and the ownership ledger. The engine's tests stay out (Miri
# runs them ~100x slower than the 2 minutes they are worth here).
miri:
	@if ${CARGO} +nightly miri --version >/dev/null 2>&1; then \
		${CARGO} +nightly miri test -p netmap-user --features sim; \
	else \
		echo "SKIP: miri is not installed (make setup installs it where rustup can fetch nightly)"; \
	fi

harness-unit:
	@set -- -m unittest discover -s tests/vm -p 'test_*.py'; ${PYTHON}

pkg-unit:
	@set -- -m unittest discover -s tests/pkg -p 'test_*.py'; ${PYTHON}

lint: fmt-check clippy clippy-freebsd docs
unit: cargo-test harness-unit pkg-unit

man-lint:
	@if command -v mandoc >/dev/null 2>&1; then \
		mandoc -Tlint -Wwarning ${MANPAGES} && echo "man pages: mandoc -Tlint clean"; \
	else \
		echo "SKIP: mandoc is not installed (apt-get install mandoc)"; \
	fi

# Off FreeBSD: cargo zigbuild, then each binary must carry FreeBSD's ABI
# note (.note.tag: namesz 8, descsz 4, type NT_FREEBSD_ABI_TAG, "FreeBSD"),
# which is how the FreeBSD kernel recognises its binaries.
freebsd:
	@if [ "$$(uname -s)" = FreeBSD ]; then \
		${CARGO} build --release --workspace --bins --examples; \
	elif ! rustup target list --installed 2>/dev/null | grep -q ${FBSD_TARGET}; then \
		echo "SKIP: the ${FBSD_TARGET} target is not installed (make setup could not add it)"; \
	else \
		${TOOLPATH} ${CARGO} zigbuild --release --target ${FBSD_TARGET} --workspace --bins --examples && \
		for b in emtunctl examples/fwd examples/pingpong; do \
			f=target/${FBSD_TARGET}/release/$$b; \
			LC_ALL=C grep -qaP '\x08\0\0\0\x04\0\0\0\x01\0\0\0FreeBSD\0' $$f \
				|| { echo "not a FreeBSD binary: $$f"; exit 1; }; \
			echo "$$f: ELF with the FreeBSD ABI note"; \
		done; \
	fi

bench:
	${CARGO} bench -p emtun --features sim --bench forward -- --noplot

vm-test:
	@${TOOLPATH} IMAGE="${IMAGE}" ACCEL="${ACCEL}" sh tests/vm/run.sh

# The benchmark of issue 10 (tests/vm/bench.py): DUT CPU per pair per mode,
# TCP and RTT through the tunnel, the stock netmap bridge as the anchor.
vm-bench:
	@${TOOLPATH} IMAGE="${IMAGE}" ACCEL="${ACCEL}" BENCH=1 sh tests/vm/run.sh

install: install-service
	install -d ${DESTDIR}${PREFIX}/sbin ${DESTDIR}${PREFIX}/bin \
		${DESTDIR}${PREFIX}/share/man/man8 ${DESTDIR}${PREFIX}/share/man/man4
	install -m 555 target/release/emtunctl ${DESTDIR}${PREFIX}/sbin/emtunctl
	install -m 555 target/release/examples/fwd ${DESTDIR}${PREFIX}/bin/emtun-fwd
	install -m 555 target/release/examples/pingpong ${DESTDIR}${PREFIX}/bin/emtun-pingpong
	install -m 444 ctl/emtunctl.8 ${DESTDIR}${PREFIX}/share/man/man8/emtunctl.8
	install -m 444 kmod-patch/man/netmap_tun.4 ${DESTDIR}${PREFIX}/share/man/man4/netmap_tun.4

# The service (emtun(8)): the rc.d script is the port's files/emtun.in, with
# %%PREFIX%% substituted as the ports framework's USE_RC_SUBR does.
RC_SCRIPT=	pkg/freebsd/net/emtun/files/emtun.in
install-service:
	install -d ${DESTDIR}${PREFIX}/etc/rc.d ${DESTDIR}${PREFIX}/etc/devd \
		${DESTDIR}${PREFIX}/share/man/man8
	sed -e 's,%%PREFIX%%,${PREFIX},g' ${RC_SCRIPT} > ${DESTDIR}${PREFIX}/etc/rc.d/emtun.tmp
	install -m 555 ${DESTDIR}${PREFIX}/etc/rc.d/emtun.tmp ${DESTDIR}${PREFIX}/etc/rc.d/emtun
	rm -f ${DESTDIR}${PREFIX}/etc/rc.d/emtun.tmp
	install -m 444 pkg/devd/emtun.conf ${DESTDIR}${PREFIX}/etc/devd/emtun.conf
	install -m 444 pkg/man/emtun.8 ${DESTDIR}${PREFIX}/share/man/man8/emtun.8

uninstall:
	rm -f ${DESTDIR}${PREFIX}/sbin/emtunctl ${DESTDIR}${PREFIX}/bin/emtun-fwd \
		${DESTDIR}${PREFIX}/bin/emtun-pingpong \
		${DESTDIR}${PREFIX}/share/man/man8/emtunctl.8 \
		${DESTDIR}${PREFIX}/share/man/man4/netmap_tun.4 \
		${DESTDIR}${PREFIX}/etc/rc.d/emtun ${DESTDIR}${PREFIX}/etc/devd/emtun.conf \
		${DESTDIR}${PREFIX}/share/man/man8/emtun.8

# Kernel side: FreeBSD hosts only (SRCDIR=/usr/src by default).
check-patch:
	cd kmod-patch && make check
kernel:
	cd kmod-patch && make apply kernel
install-kernel:
	cd kmod-patch && make install-kernel
module:
	cd kmod-patch && make module

clean:
	${CARGO} clean
