# emtun: one em(4) port shared by a netmap application and the kernel stack.
# Portable between GNU make (Linux CI) and make(1) on FreeBSD hosts.
#
#   make run        build and run: the tunnel demo on the in-memory port, or,
#                   on FreeBSD with IFACE=em0, the real tunnel (emtunctl run)
#   make test       fmt check, clippy -D warnings, all tests, man page lint,
#                   FreeBSD build of every binary, VM test (skips w/o IMAGE)
#   make bench      criterion: zero-copy swap vs copy, batch 1..256
#   make freebsd    FreeBSD amd64 binaries (cargo zigbuild off FreeBSD)
#   make vm-test IMAGE=disk.img [ACCEL=tcg|kvm]   FreeBSD VM end-to-end test
#   make install    (FreeBSD) emtunctl, the examples, the man pages, and the
#                   service: rc.d script, devd rules (install-service alone)
#   make kernel / install-kernel / module   see kmod-patch/Makefile

CARGO?=		cargo
FBSD_TARGET=	x86_64-unknown-freebsd
PREFIX?=	/usr/local
DESTDIR?=
IFACE?=
CLAIM?=		0x88b5

.PHONY: all build run test lint unit man-lint freebsd bench vm-test setup \
	install install-service uninstall kernel install-kernel module check-patch clean

all: build

build:
	${CARGO} build --release --workspace --bins --examples

run: build
	@if [ -n "${IFACE}" ]; then \
		./target/release/emtunctl run ${IFACE} --claim ${CLAIM}; \
	else \
		./target/release/examples/memdemo; \
	fi

# Installs what the tests need: a FreeBSD Rust target and a linker for it.
setup:
	@rustup component add rustfmt clippy >/dev/null 2>&1 || true
	@if [ "$$(uname -s)" != FreeBSD ]; then \
		rustup target list --installed | grep -q ${FBSD_TARGET} || rustup target add ${FBSD_TARGET}; \
		command -v cargo-zigbuild >/dev/null 2>&1 || pip install --quiet ziglang cargo-zigbuild; \
	fi
	@python3 -c 'import prometheus_client' 2>/dev/null || pip install --quiet prometheus_client

test: setup lint unit man-lint freebsd vm-test

lint:
	${CARGO} fmt --all -- --check
	${CARGO} clippy --workspace --all-targets -- -D warnings
	@if [ "$$(uname -s)" != FreeBSD ]; then \
		${CARGO} clippy --workspace --all-targets --target ${FBSD_TARGET} -- -D warnings; \
	fi

unit:
	${CARGO} test --workspace
	python3 -m unittest discover -s tests/vm -p 'test_*.py'
	python3 -m unittest discover -s tests/pkg -p 'test_*.py'

man-lint:
	@if command -v mandoc >/dev/null 2>&1; then \
		mandoc -Tlint -Wwarning ctl/emtunctl.8 kmod-patch/man/netmap_tun.4 pkg/man/emtun.8 && \
			echo "man pages: mandoc -Tlint clean"; \
	else \
		echo "man pages: mandoc not installed, lint skipped"; \
	fi

freebsd:
	@if [ "$$(uname -s)" = FreeBSD ]; then \
		${CARGO} build --release --workspace --bins --examples; \
	else \
		${CARGO} zigbuild --release --target ${FBSD_TARGET} --workspace --bins --examples && \
		file target/${FBSD_TARGET}/release/emtunctl 2>/dev/null || true; \
	fi

bench:
	${CARGO} bench -p netmap-user --bench forward -- --noplot

vm-test:
	@IMAGE="${IMAGE}" ACCEL="${ACCEL}" sh tests/vm/run.sh

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
