#!/usr/bin/env bash
# A/B of two switchboard binaries on the issue-10 figures, in one session:
# each scenario runs on binary A, then B, then the next scenario, each on a
# fresh `switchboard dev` (fresh PostgreSQL, fsync on), so the machine's
# load drifts over both alike. The load tool of the first binary drives
# both, or AB_LOADTOOL's. Writes JSON reports and CPU profiles into OUT
# and prints a table.
#
#   scripts/ab.sh OLD_BINARY NEW_BINARY [OUT]
#   AB_DURATION=10s AB_SCENARIOS="idle fresh1000" AB_LOADTOOL=NEW_BINARY scripts/ab.sh ...
#   AB_INGEST_RATE=12000 AB_SCENARIOS=ingest scripts/ab.sh ...  (offered rate of ingest)
#
# AB_LOADTOOL_B drives B's runs with another load tool: two tools on one
# server is `AB_LOADTOOL_B=NEW_BINARY scripts/ab.sh OLD_BINARY OLD_BINARY`.
set -euo pipefail
a=$(realpath "$1"); b=$(realpath "$2"); tool_a=$(realpath "${AB_LOADTOOL:-$1}")
tool_b=$(realpath "${AB_LOADTOOL_B:-$tool_a}")
out=${3:-$(mktemp -d /tmp/switchboard-ab-XXXXXX)}
mkdir -p "$out"
duration=${AB_DURATION:-15s}
ingest_rate=${AB_INGEST_RATE:-8000}
scenarios=${AB_SCENARIOS:-idle fresh1000 fresh2000 ingest}
port=${AB_PORT:-18180}
url="http://127.0.0.1:${port}"
export SWITCHBOARD_HTTP_ADDR="127.0.0.1:${port}" SWITCHBOARD_LOG_LEVEL=warn SWITCHBOARD_RATE_AGENT=0

# flags of each scenario: 500 conversations (5 inboxes × 100 contacts),
# 4 subscribers per inbox; ingest has no subscribers and is offered far
# above capacity to read the achieved rate.
flags() {
  local common=(--inboxes 5 --contacts 100 --warmup 3s --max-errors -1)
  case $1 in
    idle) echo "${common[@]} --agents 4 --workers 64 --rate 100 --duration $duration --search-sample 0.02" ;;
    fresh1000) echo "${common[@]} --agents 4 --workers 512 --rate 1000 --duration $duration --search-sample 0.02" ;;
    fresh2000) echo "${common[@]} --agents 4 --workers 512 --rate 2000 --duration $duration --search-sample 0.02" ;;
    ingest) echo "--inboxes 10 --contacts 100 --agents 0 --workers 1024 --rate $ingest_rate --duration 10s --warmup 2s --max-errors -1 --search-sample 0 --call-share 0 --reply-share 0 --resend-share 0" ;;
  esac
}

run() { # label binary scenario
  local label=$1 bin=$2 sc=$3 dir token node tool=$tool_a
  [ "$label" = b ] && tool=$tool_b
  dir=$(mktemp -d /tmp/switchboard-ab-node-XXXXXX)
  token="ab-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  SWITCHBOARD_DEV_DIR="$dir" SWITCHBOARD_ADMIN_TOKEN="$token" "$bin" dev >"$dir/node.log" 2>&1 &
  node=$!
  for _ in $(seq 1 600); do
    curl -fsS "$url/readyz" >/dev/null 2>&1 && break
    kill -0 $node 2>/dev/null || { cat "$dir/node.log"; return 1; }
    sleep 0.1
  done
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  # shellcheck disable=SC2046
  "$tool" loadtest --url "$url" --admin-token "$token" $(flags "$sc") \
    --json "$out/$sc-$label.json" --profile "$out/$sc-$label.pprof" >"$out/$sc-$label.txt" 2>/dev/null || true
  echo "$load" >"$out/$sc-$label.load"
  kill -INT $node; wait $node 2>/dev/null || true
  rm -rf "$dir"
}

for sc in $scenarios; do
  for label in a b; do
    bin=$a; [ $label = b ] && bin=$b
    echo "==> $sc on $label ($bin)"
    run $label "$bin" "$sc"
  done
done

echo
echo "| scenario | binary | load avg | achieved | ack p50 / p99 (ms) | freshness p50 / p99 (ms) | node CPU µs/write | cores | tool CPU µs/write | stale | lost | dup | gaps |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for sc in $scenarios; do
  for label in a b; do
    f="$out/$sc-$label.json"; [ -f "$f" ] || continue
    jq -r --arg sc "$sc" --arg l "$label" --arg load "$(cat "$out/$sc-$label.load")" \
      '"| \($sc) | \($l) | \($load) | \(.throughput.achieved_rate|floor) | \(.latency_ms.ack.p50_ms) / \(.latency_ms.ack.p99_ms) | \(.latency_ms.freshness.p50_ms // "—") / \(.latency_ms.freshness.p99_ms // "—") | \(.node_cpu.us_per_write) | \(.node_cpu.cores) | \(.node_cpu.tool_us_per_write // "—") | \(.counters.stale) | \(.counters.lost) | \(.counters.duplicates) | \(.counters.gaps) |"' "$f"
  done
done
echo "(reports and profiles in $out)"
