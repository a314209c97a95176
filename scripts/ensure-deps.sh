#!/usr/bin/env bash
# Installs what Switchboard's build, run and tests need from Debian's
# packages, when missing, and says what it is doing.
set -euo pipefail

want=()
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null 2>&1; then
  want+=(postgresql)
fi
for tool in "$@"; do
  case "$tool" in
    chromium) command -v chromium >/dev/null 2>&1 || want+=(chromium) ;;
    etcd) command -v etcd >/dev/null 2>&1 || want+=(etcd-server) ;;
    protoc) command -v protoc >/dev/null 2>&1 || want+=(protobuf-compiler) ;;
    jq) command -v jq >/dev/null 2>&1 || want+=(jq) ;;
    # The JS client's tests use Node's built-in WebSocket (Node 20.10+ behind
    # --experimental-websocket); Debian's nodejs is the fallback when none is
    # installed.
    node) command -v node >/dev/null 2>&1 || want+=(nodejs) ;;
  esac
done
if [ ${#want[@]} -eq 0 ]; then
  exit 0
fi
echo "==> installing Debian packages: ${want[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
# Debian starts a cluster-wide PostgreSQL service on install; Switchboard runs
# its own servers, so stop it to free the port and the memory.
if [[ " ${want[*]} " == *" postgresql "* ]] && command -v service >/dev/null 2>&1; then
  $sudo service postgresql stop >/dev/null 2>&1 || true
fi
echo "==> installed: ${want[*]}"
