#!/usr/bin/env bash
# Installs what the suites need on a Debian bookworm machine, and nothing when it is already there: the
# PostgreSQL 15 server, pgvector (no bookworm package: built from Debian trixie's source package against
# postgresql-server-dev-15, ~30 s), redis-server, prometheus (its promtool checks deploy/prometheus/;
# test/e2e/prometheus.e2e.test.ts starts a server) and systemd (its systemd-analyze verifies
# deploy/systemd/), and bubblewrap with python3 (the execution sandbox, test/sandbox.test.ts). The tests start their own throwaway cluster, Redis and Prometheus on 127.0.0.1
# (test/services/); this script only installs, and leaves no Prometheus service of the package running.
# Needs root.
#   scripts/install-services.sh          install what is missing
#   scripts/install-services.sh --check  exit 0 when everything is installed, 1 otherwise
set -euo pipefail

PG_VERSION=15
PG_BIN="/usr/lib/postgresql/${PG_VERSION}/bin"
VECTOR_CONTROL="/usr/share/postgresql/${PG_VERSION}/extension/vector.control"

installed() {
  [[ -x "${PG_BIN}/postgres" && -x "${PG_BIN}/initdb" && -f "${VECTOR_CONTROL}" ]] && command -v redis-server >/dev/null &&
    command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v systemd-analyze >/dev/null &&
    [[ -x /usr/bin/bwrap && -x /usr/bin/python3 ]]
}

# The package starts a server of its own on :9090 where services may start (not in a container whose
# policy-rc.d forbids it): stop and disable it; the e2e test runs its own on a free port.
stop_packaged_prometheus() {
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  if [[ -x /etc/init.d/prometheus ]] && /etc/init.d/prometheus status >/dev/null 2>&1; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
}

if [[ "${1:-}" == "--check" ]]; then
  installed && exit 0 || exit 1
fi
if installed; then
  echo "install-services: PostgreSQL ${PG_VERSION} with pgvector, redis-server and prometheus are installed"
  exit 0
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "install-services: run as root (apt-get install) to install PostgreSQL ${PG_VERSION}, pgvector, Redis and Prometheus" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "postgresql-${PG_VERSION}" redis-server prometheus systemd \
  bubblewrap python3 >/dev/null
stop_packaged_prometheus

if [[ ! -f "${VECTOR_CONTROL}" ]]; then
  apt-get install -y -qq --no-install-recommends "postgresql-server-dev-${PG_VERSION}" build-essential dpkg-dev >/dev/null
  # Source packages only, and only trixie's: nothing of trixie is installed as a binary package.
  sources=/etc/apt/sources.list.d/brain-trixie-src.sources
  cat >"${sources}" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  (
    cd "${work}"
    apt-get source -qq --download-only pgvector >/dev/null
    dpkg-source -x --no-check ./pgvector_*.dsc src >/dev/null
    cd src
    make -s PG_CONFIG="${PG_BIN}/pg_config" >/dev/null
    make -s PG_CONFIG="${PG_BIN}/pg_config" install >/dev/null
  )
  rm -f "${sources}"
  apt-get update -qq
fi

installed || {
  echo "install-services: installation finished but PostgreSQL/pgvector/redis/prometheus is still missing" >&2
  exit 1
}
echo "install-services: installed PostgreSQL ${PG_VERSION}, pgvector, redis-server and prometheus"
