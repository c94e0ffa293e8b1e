#!/bin/sh
# Installs what `make test` needs, without touching the system Python
# (Debian's pip is externally managed, PEP 668):
#   - rustfmt, clippy and the x86_64-unknown-freebsd target (rustup);
#   - a venv under target/tools/venv with ziglang + cargo-zigbuild (the
#     FreeBSD linker) and prometheus_client (the harness's metrics check);
#   - miri on the nightly toolchain, where rustup can fetch it;
#   - as root on Debian, the packages that are missing: python3-venv, mandoc,
#     file, bmake, shellcheck, procps (the rc.d tests run ps).
# The toolchain is the one rust-toolchain.toml pins (with rustfmt, clippy and
# the FreeBSD target), which rustup installs on first use.
# What cannot be installed is said here and reported as skipped by
# tools/test.sh; nothing is hidden.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$ROOT/target/tools
VENV=$T/venv
say() { echo "setup: $*"; }
fail() { echo "setup: $*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || fail "cargo not found: install Rust with rustup first"
command -v rustup >/dev/null 2>&1 && {
	rustup component add rustfmt clippy >/dev/null 2>&1 || say "rustup could not add rustfmt/clippy"
}

# Debian packages, only the missing ones, only as root.
pkgs=""
command -v python3 >/dev/null 2>&1 || pkgs="$pkgs python3"
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || pkgs="$pkgs python3-venv"
command -v mandoc >/dev/null 2>&1 || pkgs="$pkgs mandoc"
command -v file >/dev/null 2>&1 || pkgs="$pkgs file"
command -v bmake >/dev/null 2>&1 || pkgs="$pkgs bmake"
command -v shellcheck >/dev/null 2>&1 || pkgs="$pkgs shellcheck"
command -v ps >/dev/null 2>&1 || pkgs="$pkgs procps"
if [ -n "$pkgs" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "apt-get install$pkgs"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $pkgs; } \
			>/dev/null 2>&1 || say "apt-get could not install some of:$pkgs"
	else
		say "not installed:$pkgs (as root: apt-get install$pkgs); their checks will be skipped"
	fi
fi
command -v python3 >/dev/null 2>&1 || fail "python3 is needed (apt-get install python3 python3-venv)"

if [ "$(uname -s)" != FreeBSD ]; then
	rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-freebsd \
		|| rustup target add x86_64-unknown-freebsd >/dev/null \
		|| say "rustup could not add the x86_64-unknown-freebsd target; the FreeBSD checks will be skipped"
fi

# The venv: zig + cargo-zigbuild link FreeBSD binaries on Linux. One that an
# earlier run left without pip is made again.
if ! "$VENV/bin/python3" -m pip --version >/dev/null 2>&1; then
	rm -rf "$VENV"
	mkdir -p "$T"
	python3 -m venv "$VENV" || {
		rm -rf "$VENV"
		fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
	}
fi
want=""
[ "$(uname -s)" != FreeBSD ] && { [ -x "$VENV/bin/cargo-zigbuild" ] || want=" ziglang cargo-zigbuild"; }
"$VENV/bin/python3" -c 'import prometheus_client' >/dev/null 2>&1 || want="$want prometheus_client"
if [ -n "$want" ]; then
	say "pip install (venv target/tools/venv):$want"
	"$VENV/bin/python3" -m pip install --quiet $want || fail "pip install$want failed"
fi

# Miri (undefined-behaviour check of the unsafe ring code), where nightly can be had.
if ! cargo +nightly miri --version >/dev/null 2>&1; then
	rustup toolchain install nightly --profile minimal --component miri,rust-src >/dev/null 2>&1 \
		|| rustup component add miri rust-src --toolchain nightly >/dev/null 2>&1 \
		|| say "miri is not installable here; the miri step will be skipped"
fi
say "done"
