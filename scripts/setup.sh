#!/usr/bin/env bash
# One idempotent setup for a fresh Debian machine: Python packages, redis-server,
# PostgreSQL, and the real Toxiproxy server v2.12.0 built from its Go module into
# tools/bin. A second run only checks and takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="$ROOT/tools/bin"
TOXIPROXY_VERSION="v2.12.0"
TOXIPROXY_MODULE="github.com/Shopify/toxiproxy/v2"
PYTHON="${PYTHON:-python3}"

say() { printf '[setup] %s\n' "$*"; }
fail() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ------------------------------------------------------------
need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v wrk >/dev/null 2>&1 || need_pkgs+=(wrk)
if [ "${LEDGERCHAOS_WITH_CHROMIUM:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need_pkgs+=(chromium)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    fail "missing Debian packages: ${need_pkgs[*]}. Install them by hand: apt-get install ${need_pkgs[*]}"
  fi
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  say "installing Debian packages: ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # The Debian packages start system-wide services; the harness starts its own on free ports.
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now redis-server postgresql >/dev/null 2>&1 || true; fi
  $SUDO service redis-server stop >/dev/null 2>&1 || true
  $SUDO service postgresql stop >/dev/null 2>&1 || true
else
  say "Debian packages present (redis-server, postgresql, wrk$([ "${LEDGERCHAOS_WITH_CHROMIUM:-0}" = 1 ] && echo ", chromium"))"
fi

# --- Toxiproxy server and CLI, built from the Go module ---------------------------
if [ -x "$TOOLS_BIN/toxiproxy-server" ] && "$TOOLS_BIN/toxiproxy-server" -version 2>/dev/null | grep -q "${TOXIPROXY_VERSION#v}"; then
  say "toxiproxy-server ${TOXIPROXY_VERSION} present in tools/bin"
else
  command -v go >/dev/null 2>&1 || fail "Go is needed to build Toxiproxy ${TOXIPROXY_VERSION}: install Go (apt-get install golang-go, or from go.dev), then run setup again"
  say "building Toxiproxy ${TOXIPROXY_VERSION} from ${TOXIPROXY_MODULE}"
  mkdir -p "$TOOLS_BIN"
  build_dir="$(mktemp -d)"
  trap 'rm -rf "$build_dir"' EXIT
  ldflags="-X ${TOXIPROXY_MODULE}.Version=${TOXIPROXY_VERSION#v}"
  GOBIN="$build_dir" GOFLAGS=-mod=mod go install -ldflags="$ldflags" "${TOXIPROXY_MODULE}/cmd/server@${TOXIPROXY_VERSION}"
  GOBIN="$build_dir" GOFLAGS=-mod=mod go install -ldflags="$ldflags" "${TOXIPROXY_MODULE}/cmd/cli@${TOXIPROXY_VERSION}"
  mv "$build_dir/server" "$TOOLS_BIN/toxiproxy-server"
  mv "$build_dir/cli" "$TOOLS_BIN/toxiproxy-cli"
  say "built $("$TOOLS_BIN/toxiproxy-server" -version)"
fi

# --- Python packages ---------------------------------------------------------------
stamp="$ROOT/tools/.pip-stamp"
if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/pyproject.toml" ] && [ "$stamp" -nt "$ROOT/constraints.txt" ] && "$PYTHON" -c "import harness, locust, simpy, toxiproxy, asyncpg" 2>/dev/null; then
  say "Python packages present"
else
  say "installing the project and its Python packages (exact versions from constraints.txt)"
  "$PYTHON" -m pip install -q --disable-pip-version-check -c "$ROOT/constraints.txt" -e "$ROOT[test]" || fail "pip could not install the project; see the messages above"
  mkdir -p "$ROOT/tools" && touch "$stamp"
fi

say "ready: redis-server $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/'), $(ls -d /usr/lib/postgresql/*/bin | head -1), $("$TOOLS_BIN/toxiproxy-server" -version)"
