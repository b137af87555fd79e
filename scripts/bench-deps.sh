#!/usr/bin/env bash
# Makes sure the tools only the benchmarks use are installed: wrk (the load
# generator of the flask and httpcache groups), gunicorn with Flask and
# Flask-Caching (the flask group's Python contender; python3-redis is what
# Flask-Caching's RedisCache imports), redis-server and varnish. The test run
# never needs them and .ci/run does not call this script. On Debian as root it
# installs the missing packages itself; elsewhere it names what to install.
set -euo pipefail
PACKAGES=(wrk gunicorn python3-flask python3-flask-caching python3-redis redis-server varnish)

# Debian's Python modules live in /usr/lib/python3/dist-packages: only the
# system interpreter sees them (not a pyenv or venv python3 earlier on PATH).
PYTHON=/usr/bin/python3

missing=()
for bin in wrk gunicorn redis-server varnishd; do
  # varnishd is in /usr/sbin, not on a non-root user's PATH on Debian.
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
done
for module in flask flask_caching redis; do
  [ -x "$PYTHON" ] && "$PYTHON" -c "import $module" >/dev/null 2>&1 || missing+=("python:$module")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bench tools missing (${missing[*]}): installing ${PACKAGES[*]}" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"
  exit 0
fi
echo "The benchmarks need ${missing[*]}: install them with" >&2
echo "  sudo apt-get install --no-install-recommends ${PACKAGES[*]}" >&2
exit 1
