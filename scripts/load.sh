#!/usr/bin/env bash
# make load: wrk against examples/service on 127.0.0.1, about 30 s in all.
#
#  1. the healthy ladder and the bare baseline handler (-bare, on the next
#     port), in three alternating rounds of 3 s: requests per second,
#     latency percentiles, and the ratio of the medians;
#  2. the ladder again, 12 s, while faults are switched on and off through
#     the admin endpoint: the primary errors, then the backup hangs too,
#     then the primary flaps and the backup answers NaN, then the primary
#     panics half the time and the backup is slow, then all heal.
#     Every request is valid and the heuristic can always answer, so any
#     non-2xx response fails the run.
#
# wrk comes from Debian's package, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
PORT=${LOAD_PORT:-18080}
BARE_PORT=$((PORT + 1))
BASE="http://127.0.0.1:$PORT"
CONNS=${LOAD_CONNECTIONS:-16}

if ! command -v wrk >/dev/null 2>&1; then
	echo "load: installing wrk from Debian"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo="sudo"
	$sudo apt-get install -y -q wrk >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q wrk >/dev/null; }
fi

tmp=$(mktemp -d)
pids=()
stop() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
trap 'stop; rm -rf "$tmp"' EXIT

$GO build -o "$tmp/service" ./examples/service

# Fifty held-out rows, as request bodies cycled by every wrk thread; every
# tenth request is a row never seen before (its first feature drawn at
# random), which the cache cannot answer.
{
	echo "local bodies = {"
	sed -n '2,51p' testdata/heldout.csv | cut -d, -f2- | sed 's/.*/  [[{"inputs":{"features":{"dtype":"float32","shape":[1,30],"data":[&]}}}]],/'
	echo "}"
	echo "local fresh = {"
	sed -n '2,51p' testdata/heldout.csv | cut -d, -f3- | sed 's/.*/  [[{"inputs":{"features":{"dtype":"float32","shape":[1,30],"data":[XX,&]}}}]],/'
	echo "}"
	cat <<'LUA'
local i = 0
request = function()
  i = i + 1
  local k = (i % #bodies) + 1
  local body = bodies[k]
  if i % 10 == 0 then
    body = fresh[k]:gsub("XX", string.format("%.6f", 8 + 20 * math.random()))
  end
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "application/json"}, body)
end
LUA
} >"$tmp/predict.lua"

start() { # port flags...: the service on 127.0.0.1:port, until the script ends
	local port=$1
	shift
	timeout 180 "$tmp/service" -addr "127.0.0.1:$port" -log-level error "$@" 2>>"$tmp/service.log" &
	pids+=($!)
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "load: the service did not start:"; cat "$tmp/service.log"; exit 1
}

run_wrk() { # out port seconds
	wrk -t2 -c"$CONNS" -d"$3"s --timeout 5s --latency -s "$tmp/predict.lua" "http://127.0.0.1:$2" >"$tmp/$1.out"
}

field() { # out awk-program
	awk "$2" "$tmp/$1.out"
}

report() { # label out
	local non2xx errors
	non2xx=$(field "$2" '/Non-2xx or 3xx responses/ {print $NF}')
	errors=$(field "$2" '/Socket errors/ {print}')
	printf "%-26s %9s req/s   p50 %-9s p90 %-9s p99 %-9s non-2xx %s%s\n" "$1" \
		"$(field "$2" '/^Requests\/sec/ {print $2}')" "$(field "$2" '$1 == "50%" {print $2}')" \
		"$(field "$2" '$1 == "90%" {print $2}')" "$(field "$2" '$1 == "99%" {print $2}')" "${non2xx:-0}" "${errors:+   $errors}"
	[ -z "$non2xx" ]
}

median() { # outs...: the median requests per second
	for o in "$@"; do field "$o" '/^Requests\/sec/ {print $2}'; done | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

fault() { # tier json
	curl -fs -XPUT "$BASE/admin/faults/$1" -d "$2" >/dev/null
	echo "  $(date +%T) $1: $2"
}

echo "load: $CONNS connections, 2 wrk threads, $(nproc) CPUs"
start "$PORT"
start "$BARE_PORT" -bare

# The ladder and the bare handler, healthy, in alternating 3 s rounds so
# that a noisy neighbour hits both alike.
run_wrk warm-ladder "$PORT" 1
run_wrk warm-bare "$BARE_PORT" 1
for round in 1 2 3; do
	run_wrk "ladder-$round" "$PORT" 3
	run_wrk "bare-$round" "$BARE_PORT" 3
done

# The ladder while faults switch.
run_wrk ladder-faults "$PORT" 12 &
wrk_pid=$!
sleep 2; fault primary '{"error_rate": 1}'
sleep 2; fault backup '{"hang_rate": 1}'
sleep 2; fault primary '{"down_for": "500ms", "up_for": "500ms"}'; fault backup '{"nan_rate": 1}'
sleep 2; fault primary '{"panic_rate": 0.5}'; fault backup '{"latency": "5ms"}'
sleep 2; fault primary '{}'; fault backup '{}'
wait "$wrk_pid"
metrics=$(curl -fs "$BASE/metrics" | grep -E '^ladder_predictions_total.* [1-9]' || true)

echo
status=0
for round in 1 2 3; do
	report "ladder, healthy ($round)" "ladder-$round" || status=1
	report "bare ($round)" "bare-$round" || status=1
done
report "ladder, faults switching" ladder-faults || { echo "load: FAIL: non-2xx responses to valid requests while a rung could answer"; status=1; }
l=$(median ladder-1 ladder-2 ladder-3)
b=$(median bare-1 bare-2 bare-3)
awk -v l="$l" -v b="$b" 'BEGIN { printf "median req/s: ladder %s, bare %s; ladder/bare throughput %.2f\n", l, b, l / b }'
echo
echo "served during the fault run:"
echo "$metrics" | sed 's/^/  /'
exit $status
