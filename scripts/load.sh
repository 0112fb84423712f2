#!/usr/bin/env bash
# make load: wrk against examples/service on 127.0.0.1, about 30 s in all.
#
#  1. healthy ladder, 6 s: requests per second and latency percentiles;
#  2. the bare baseline handler (-bare), 6 s, for the ratio;
#  3. the ladder again, 15 s, while faults are switched on and off through
#     the admin endpoint: the primary errors, then the backup hangs too,
#     then the primary flaps and the backup answers NaN, then all heal.
#     Every request is valid and the heuristic can always answer, so any
#     non-2xx response fails the run.
#
# wrk comes from Debian's package, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PORT=${LOAD_PORT:-18080}
BASE="http://127.0.0.1:$PORT"
CONNS=${LOAD_CONNECTIONS:-16}

if ! command -v wrk >/dev/null 2>&1; then
	echo "load: installing wrk from Debian"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get install -y -q wrk >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q wrk >/dev/null; }
fi

tmp=$(mktemp -d)
pid=""
stop() {
	if [ -n "$pid" ]; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
	fi
}
trap 'stop; rm -rf "$tmp"' EXIT

$GO build -o "$tmp/service" ./examples/service

# Fifty held-out rows, as request bodies cycled by every wrk thread.
{
	echo "local bodies = {"
	sed -n '2,51p' testdata/heldout.csv | cut -d, -f2- | sed 's/.*/  [[{"inputs":{"features":{"dtype":"float32","shape":[1,30],"data":[&]}}}]],/'
	echo "}"
	cat <<'LUA'
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])
end
LUA
} >"$tmp/predict.lua"

start() {
	timeout 120 "$tmp/service" -addr "127.0.0.1:$PORT" -log-level error "$@" 2>"$tmp/service.log" &
	pid=$!
	for _ in $(seq 100); do
		curl -fs "$BASE/healthz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "load: the service did not start:"; cat "$tmp/service.log"; exit 1
}

run_wrk() { # name seconds
	wrk -t2 -c"$CONNS" -d"$2"s --timeout 5s --latency -s "$tmp/predict.lua" "$BASE" >"$tmp/$1.out"
}

report() { # name
	local out="$tmp/$1.out"
	local rps p50 p90 p99 non2xx errors
	rps=$(awk '/^Requests\/sec/ {print $2}' "$out")
	p50=$(awk '$1 == "50%" {print $2}' "$out")
	p90=$(awk '$1 == "90%" {print $2}' "$out")
	p99=$(awk '$1 == "99%" {print $2}' "$out")
	non2xx=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$out")
	errors=$(awk '/Socket errors/ {print}' "$out")
	printf "%-22s %10s req/s   p50 %-9s p90 %-9s p99 %-9s non-2xx %s%s\n" "$1" "$rps" "$p50" "$p90" "$p99" "${non2xx:-0}" "${errors:+   $errors}"
	echo "$rps" >"$tmp/$1.rps"
	[ -z "$non2xx" ]
}

fault() { # tier json
	curl -fs -XPUT "$BASE/admin/faults/$1" -d "$2" >/dev/null
	echo "  $(date +%T) $1: $2"
}

echo "load: $CONNS connections, 2 wrk threads, $(nproc) CPUs"
start
run_wrk ladder-healthy 6
stop

start -bare
run_wrk bare 6
stop

start
run_wrk ladder-faults 15 &
wrk_pid=$!
sleep 3; fault primary '{"error_rate": 1}'
sleep 3; fault backup '{"hang_rate": 1}'
sleep 3; fault primary '{"down_for": "500ms", "up_for": "500ms"}'; fault backup '{"nan_rate": 1}'
sleep 3; fault primary '{}'; fault backup '{}'
wait "$wrk_pid"
metrics=$(curl -fs "$BASE/metrics" | grep -E '^ladder_predictions_total' || true)
stop

echo
status=0
report ladder-healthy || status=1
report bare || status=1
report ladder-faults || { echo "load: FAIL: non-2xx responses to valid requests while a rung could answer"; status=1; }
awk -v l="$(cat "$tmp/ladder-healthy.rps")" -v b="$(cat "$tmp/bare.rps")" 'BEGIN { printf "ladder/bare throughput: %.2f\n", l / b }'
echo
echo "served during the fault run:"
echo "$metrics" | sed 's/^/  /'
exit $status
