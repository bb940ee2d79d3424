#!/usr/bin/env bash
# wss with keys against ws://: the same traffic (benches/wss_traffic.py: Python websockets on
# loopback, 4 connections, N binary messages of 20 B-8 KB each answered) recorded three times,
# over ws://, wss:// TLS 1.3 AES-256-GCM and wss:// TLS 1.2 ChaCha20-Poly1305, then timed:
#   wsprobe: target/release/wsprobe analyze --format json FILE [--keylog FILE.keys] > /dev/null
#   tshark:  tshark -r FILE [-o tls.keylog_file:FILE.keys] -d tcp.port==PORT,http|tls -Y websocket
#            -T fields -e frame.number -e websocket.opcode > /dev/null
# The reports must agree (the same message counts and endings), and the goal of the project's
# TLS issue is wss with keys within 1.5x the time of ws://.
#
# usage: benches/compare_tls.sh [--messages N] [--runs N] [--skip-tshark]
# Needs root (tcpdump on lo) and the recording venv (python3 captures/record/record.py --setup;
# $WSPROBE_REC_DIR, default /work/scratch/rec). Captures go to target/bench/tls-N/ (reused when
# present; about 200 MB each at the default N=20000). wsprobe runs RUNS times (the fastest
# counts), tshark once.
set -euo pipefail
cd "$(dirname "$0")/.."

N=20000
RUNS=1
SKIP_TSHARK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --messages) N="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --skip-tshark) SKIP_TSHARK=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
PY="${WSPROBE_REC_DIR:-/work/scratch/rec}/venv/bin/python"
[ -x "$PY" ] || { echo "compare_tls: no recording venv at $PY (record.py --setup)" >&2; exit 2; }

echo "== cargo build --release" >&2
cargo build --release --quiet
WSPROBE=target/release/wsprobe
DIR="target/bench/tls-$N"
mkdir -p "$DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
if [ ! -s "$DIR/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -days 3650 -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
fi

MODES="ws:21301 wss13:21302 wss12chacha:21303"
for m in $MODES; do
  mode=${m%:*}; port=${m#*:}
  [ -s "$DIR/$mode.pcap" ] && continue
  echo "== recording $DIR/$mode.pcap" >&2
  rm -f "$DIR/$mode.keys"
  tcpdump -i lo -s 0 -B 65536 -U -w "$DIR/$mode.pcap" "tcp port $port" 2>/dev/null &
  tcpdump_pid=$!
  sleep 1
  "$PY" benches/wss_traffic.py "$mode" "$port" "$N" "$DIR"
  # Let tcpdump drain the kernel's buffer before it stops (a busy machine lags).
  sleep 3
  kill -INT "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
done

# run_timed RUNS CMD... -> "wall_seconds cpu_seconds maxrss_kib" (the fastest of RUNS)
run_timed() {
  local runs="$1"; shift
  local best="" cpu="" rss=0 i
  for ((i = 1; i <= runs; i++)); do
    /usr/bin/time -v -o "$TMP/time" "$@" >"$TMP/out" 2>"$TMP/stderr" \
      || { echo "compare_tls: '$*' failed:" >&2; tail -5 "$TMP/stderr" >&2; exit 1; }
    local secs usr kib
    usr=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$TMP/time")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {
             n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s }' "$TMP/time")
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")
    if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN {exit !(a < b)}'; then best=$secs; cpu=$usr; fi
    [ "$kib" -gt "$rss" ] && rss=$kib
  done
  echo "$best $cpu $rss"
}

printf '%-18s %10s %-8s %8s %8s %9s\n' file bytes tool wall_s cpu_s rss_mib
base=""
for m in $MODES; do
  mode=${m%:*}; port=${m#*:}
  pcap="$DIR/$mode.pcap"
  keys=()
  tkeys=()
  decode=(-d "tcp.port==$port,http")
  if [ "$mode" != ws ]; then
    keys=(--keylog "$DIR/$mode.keys")
    tkeys=(-o "tls.keylog_file:$DIR/$mode.keys")
    decode=(-d "tcp.port==$port,tls")
  fi
  read -r s cpu kib < <(run_timed "$RUNS" "$WSPROBE" analyze --format json "${keys[@]}" "$pcap")
  "$WSPROBE" analyze --format json "${keys[@]}" "$pcap" 2>/dev/null > "$TMP/$mode.json" || true
  printf '%-18s %10s %-8s %8s %8s %9.1f\n' "$mode.pcap" "$(stat -c %s "$pcap")" wsprobe "$s" "$cpu" "$(echo "$kib/1024" | bc -l)"
  [ -z "$base" ] && base=$cpu && base_wall=$s
  if [ "$SKIP_TSHARK" = 0 ]; then
    read -r ts tcpu tkib < <(run_timed 1 tshark -r "$pcap" "${tkeys[@]}" "${decode[@]}" \
      -Y websocket -T fields -e frame.number -e websocket.opcode)
    printf '%-18s %10s %-8s %8s %8s %9.1f  (%s packets with WebSocket frames)\n' "$mode.pcap" "$(stat -c %s "$pcap")" tshark "$ts" "$tcpu" "$(echo "$tkib/1024" | bc -l)" "$(wc -l < "$TMP/out")"
  fi
  if [ "$mode" != ws ]; then
    echo "  wsprobe $mode / ws: CPU $(echo "$cpu / $base" | bc -l | cut -c1-5)x (goal <= 1.5x), wall $(echo "$s / $base_wall" | bc -l | cut -c1-5)x"
  fi
done

# The same traffic gives the same report.
python3 - "$TMP" <<'PY'
import json, sys
def facts(mode):
    r = json.load(open(f"{sys.argv[1]}/{mode}.json"))
    return [(c["handshake"]["path"], c["message_counts"], c["payload_bytes"], c["close"]["code"])
            for c in r["connections"] if c.get("handshake")], r["summary"]["messages"]
ws = facts("ws")
for mode in ("wss13", "wss12chacha"):
    got = facts(mode)
    print(f"  {mode}: {'same messages and endings as ws://' if got == ws else 'DIFFERS from ws://'} "
          f"({got[1]} messages)")
    if got != ws:
        sys.exit(1)
PY
