#!/usr/bin/env bash
# The gateway against nginx (direct) and the Python floor, side by side: ../shared/bench/compare.py,
# 3 rounds of 10 s, medians. Targets: non-stream and stream throughput >= 0.75x the floor; added latency
# at one connection vs direct p50 <= 0.5 ms, p99 <= 2 ms. About 3 minutes (after the floor's venv exists).
#
#   bench/gateway.sh [more compare.py options, e.g. --litellm]     (from anywhere; runs from the repo root)
#
# Writes bench/results/compare.json. compare.py's nginx must listen on 127.0.0.1:8081 and :8082; when
# something else holds them (another benchmark on this shared machine), the run moves, as root, into a
# private network namespace (unshare -n) whose loopback is its own, and fails otherwise.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$script")/.."
busy=""
for port in 8081 8082; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then busy="$busy $port"; fi
done
if [ -n "$busy" ]; then
    if [ -z "${LLMSWITCH_BENCH_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
        echo "127.0.0.1:${busy# } in use: running in a private network namespace" >&2
        exec unshare -n env LLMSWITCH_BENCH_NETNS=1 bash -c 'ip link set lo up && exec "$0" "$@"' "$script" "$@"
    fi
    echo "127.0.0.1:${busy# } in use (another benchmark?); compare.py needs 8081 and 8082 free" >&2
    exit 2
fi
mkdir -p bench/results
uptime
python3 ../shared/bench/compare.py --llmswitch "$(pwd)/.venv/bin/llmswitch" --rounds 3 --seconds 10 \
    --json bench/results/compare.json "$@"
