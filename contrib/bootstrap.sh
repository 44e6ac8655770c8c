#!/bin/sh
# Installs what smimegw needs on Debian 12 (idempotent) and builds it in
# ./build.  Used by contrib/demo.sh and tests/run.sh; safe to run again.
#   SMG_NO_APT=1   skip package installation
#   SMG_NO_BUILD=1 only install packages
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

PKGS="build-essential autoconf automake libtool pkg-config
libssl-dev libgmime-3.0-dev libhiredis-dev libcriterion-dev libmilter-dev
openssl postfix redis-server gpgsm gnupg python3 python3-cryptography ca-certificates
libbcmail-java libbcpkix-java libbcprov-java default-jdk-headless
chromium procps iproute2 valgrind"

if [ -z "${SMG_NO_APT:-}" ]; then
	missing=""
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		[ "$(id -u)" -eq 0 ] || { echo "bootstrap: run as root to install:$missing" >&2; exit 1; }
		echo "bootstrap: installing:$missing"
		# Postfix must not configure a system mail setup of its own.
		echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q
		apt-get install -y -q --no-install-recommends $missing
	fi
	# The distribution's own Postfix and Redis stay off: tests start private ones.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		systemctl disable --now postfix redis-server >/dev/null 2>&1 || true
	fi
fi

[ -n "${SMG_NO_BUILD:-}" ] && exit 0
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
	autoreconf -fi
fi
mkdir -p build
cd build
if [ ! -f Makefile ]; then
	../configure ${SMG_CONFIGURE_FLAGS:-}
fi
make -j"$(nproc)"
