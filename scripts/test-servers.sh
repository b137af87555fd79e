#!/usr/bin/env bash
# Makes sure the servers the test suite starts (on free loopback ports) are
# installed. On Debian as root it installs the missing packages itself, so
# `npm test` works on a fresh machine; elsewhere it names what to install.
set -euo pipefail
PACKAGES=(redis-server redis-sentinel redis-tools memcached sasl2-bin libsasl2-modules openssl varnish postgresql prometheus)
BINARIES=(redis-server redis-sentinel redis-cli memcached saslpasswd2 openssl varnishd prometheus)

missing=()
for bin in "${BINARIES[@]}"; do
  # varnishd is in /usr/sbin, not on a non-root user's PATH on Debian.
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
done
# SASL's PLAIN mechanism (the memcached SASL tests) is a plugin of libsasl2-modules.
compgen -G "/usr/lib/*/sasl2/libplain.so*" >/dev/null || missing+=(libsasl2-modules)
# PostgreSQL (the Keyv tests) keeps initdb and postgres off PATH, in its versioned folder.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test servers missing (${missing[*]}): installing ${PACKAGES[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
  exit 0
fi
echo "The tests need ${missing[*]}: install them with" >&2
echo "  sudo apt-get install ${PACKAGES[*]}" >&2
exit 1
