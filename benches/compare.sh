#!/usr/bin/env bash
# wsprobe vs tshark speed/memory comparison on synthetic WebSocket captures, plus a check of
# wsprobe's JSON report against the generator's ground truth.
#
# usage: benches/compare.sh [--size-mb N] [--runs N] [--tshark-runs N] [--mix small|large|both]
#                           [--seed N] [--skip-tshark] [--skip-verify] [--strict]
#
#   --size-mb N      size of each capture in MB (default 200)
#   --runs N         timed runs per tool and file, the fastest is reported (default 1)
#   --tshark-runs N  timed runs for tshark only (default: --runs)
#   --mix M          small, large or both (default both)
#   --seed N         generator seed (default 1)
#   --skip-tshark    time wsprobe only
#   --skip-verify    do not compare wsprobe's JSON with the truth file
#   --strict         exit 1 also when a goal is missed or a report field is absent
#   --skip-memory    do not print bytes per open connection (benches/memory.rs)
#   --connections N  connections per kind for the memory benchmark (default 20000)
#   --big            also the busy-server capture: small messages, 2 GB, ~5,000 connections
#                    open at once (target/bench/busy-2000mb-s<seed>.pcap; tshark skipped on it
#                    unless --tshark-big: it takes tens of minutes)
#
# Captures go to target/bench/{small,large}-<N>mb-s<seed>.pcap (+ .truth.json), generated with
# `cargo run --release --example gen_capture` when missing (delete them after changing the generator).
# Each tool runs under /usr/bin/time -v
# (package `time`, installed if missing, as is tshark): wall time and peak RSS.
#   wsprobe: target/release/wsprobe analyze --format json --threads 1 FILE > /dev/null, and the
#            same with --threads $(nproc) (its report is checked to be the same bytes); on the
#            small mix also --format jsonl and --format json --messages --payload full (1 thread,
#            goal: jsonl within 1.3x of json)
#   tshark:  tshark -r FILE -Y websocket -T fields -e frame.number -e websocket.opcode > /dev/null
#            (+ -d tcp.port==443,http -d tcp.port==9000,http: the generator's servers speak plain
#            HTTP on 443 and 9000 too, and tshark must dissect every connection, with TCP
#            reassembly, for a fair baseline)
# Goals (project issue): wsprobe >= 20x faster than tshark, peak RSS <= 64 MiB, frame counts by
# opcode and connection endings equal to the truth.
# Exit status: 1 when a tool fails or a verified field MISMATCHes (with --strict also when a
# goal is missed or a field is ABSENT), else 0.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=200
RUNS=1
TSHARK_RUNS=
MIXES="small large"
SEED=1
SKIP_TSHARK=0
SKIP_VERIFY=0
STRICT=0
SKIP_MEMORY=0
MEM_CONNECTIONS=20000
BIG=0
TSHARK_BIG=0
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) SIZE_MB="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --tshark-runs) TSHARK_RUNS="$2"; shift 2 ;;
    --mix) case "$2" in both) MIXES="small large" ;; small|large) MIXES="$2" ;;
             *) echo "--mix: small, large or both" >&2; exit 2 ;; esac; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --skip-tshark) SKIP_TSHARK=1; shift ;;
    --skip-verify) SKIP_VERIFY=1; shift ;;
    --strict) STRICT=1; shift ;;
    --skip-memory) SKIP_MEMORY=1; shift ;;
    --connections) MEM_CONNECTIONS="$2"; shift 2 ;;
    --big) BIG=1; shift ;;
    --tshark-big) TSHARK_BIG=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
TSHARK_RUNS="${TSHARK_RUNS:-$RUNS}"

# ---- tools
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "compare: installing $*" >&2
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" \
    | $sudo debconf-set-selections 2>/dev/null || true
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
[ -x /usr/bin/time ] || apt_install time
if [ "$SKIP_TSHARK" = 0 ] && ! command -v tshark >/dev/null 2>&1; then apt_install tshark; fi
command -v python3 >/dev/null 2>&1 || apt_install python3

echo "== cargo build --release" >&2
cargo build --release --quiet
cargo build --release --quiet --example gen_capture
WSPROBE=target/release/wsprobe
GEN=target/release/examples/gen_capture

BENCH=target/bench
mkdir -p "$BENCH"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# ---- timing helper: run_timed RUNS CMD... -> "seconds cpu_seconds maxrss_kib exit_status"
# (wall and CPU time of the fastest run, largest RSS of all runs)
run_timed() {
  local runs="$1"; shift
  local best="" cpu="" rss=0 status=0 i
  for ((i = 1; i <= runs; i++)); do
    local st=0
    /usr/bin/time -v -o "$TMP/time" "$@" >/dev/null 2>"$TMP/stderr" || st=$?
    if [ "$st" != 0 ]; then
      status=$st
      echo "compare: '$*' exited $st; its stderr:" >&2
      tail -5 "$TMP/stderr" >&2
    fi
    local secs kib usr
    usr=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$TMP/time")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {
             n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s }' "$TMP/time")
    kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$TMP/time")
    if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN {exit !(a < b)}'; then
      best=$secs
      cpu=$usr
    fi
    if [ "$kib" -gt "$rss" ]; then rss=$kib; fi
  done
  echo "$best $cpu $rss $status"
}

FAIL=0
GOAL_FAIL=0
CORES=$(nproc)
THREADS_OUT=""
FORMATS_OUT=""
ROWS=()
VERIFY_OUT=""
CASES="$MIXES"
[ "$BIG" = 1 ] && CASES="$CASES busy"
for mix in $CASES; do
  skip_tshark=$SKIP_TSHARK
  if [ "$mix" = busy ]; then
    pcap="$BENCH/busy-2000mb-s$SEED.pcap"
    gen_args=(--size-mb 2000 --mix small --pool 5000)
    [ "$TSHARK_BIG" = 1 ] || skip_tshark=1
  else
    pcap="$BENCH/$mix-${SIZE_MB}mb-s$SEED.pcap"
    gen_args=(--size-mb "$SIZE_MB" --mix "$mix")
  fi
  truth="${pcap%.pcap}.truth.json"
  if [ ! -s "$pcap" ] || [ ! -s "$truth" ]; then
    echo "== generating $pcap" >&2
    "$GEN" "${gen_args[@]}" --seed "$SEED" --out "$pcap"
  fi
  bytes=$(stat -c %s "$pcap")
  packets=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packets"])' "$truth")

  echo "== wsprobe on $pcap, 1 thread and $CORES ($RUNS run(s) each)" >&2
  read -r w_s w_cpu w_kib w_st < <(run_timed "$RUNS" "$WSPROBE" analyze --format json --threads 1 "$pcap")
  [ "$w_st" = 0 ] || FAIL=1
  json_s=$w_s
  ROWS+=("$(basename "$pcap") $bytes $packets wsprobe-1t $w_s $w_cpu $w_kib $w_st")
  read -r w_s w_cpu w_kib w_st < <(run_timed "$RUNS" "$WSPROBE" analyze --format json --threads "$CORES" "$pcap")
  [ "$w_st" = 0 ] || FAIL=1
  ROWS+=("$(basename "$pcap") $bytes $packets wsprobe-${CORES}t $w_s $w_cpu $w_kib $w_st")
  if [ "$mix" = small ]; then
    # What the other reports cost beside plain json (goal: jsonl within 1.3x), one thread.
    for fmt in "jsonl" "json --messages --payload full"; do
      # shellcheck disable=SC2086 # the format's words are separate arguments
      read -r f_s f_cpu f_kib f_st < <(run_timed "$RUNS" "$WSPROBE" analyze --format $fmt --threads 1 "$pcap")
      [ "$f_st" = 0 ] || FAIL=1
      ratio=$(awk -v a="$f_s" -v b="$json_s" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
      FORMATS_OUT+="$(basename "$pcap"), 1 thread: --format $fmt $(printf '%.2f' "$f_s") s (CPU $(printf '%.2f' "$f_cpu") s, peak $((f_kib / 1024)) MiB): ${ratio}x json's $(printf '%.2f' "$json_s") s"$'\n'
      if [ "$fmt" = jsonl ]; then
        awk -v r="$ratio" 'BEGIN {exit !(r > 1.3)}' && GOAL_FAIL=1
      fi
    done
  fi
  # The sharded report must be the single-threaded one, byte for byte.
  one=$("$WSPROBE" analyze --format json --threads 1 "$pcap" | md5sum)
  all=$("$WSPROBE" analyze --format json --threads "$CORES" "$pcap" | md5sum)
  if [ "$one" = "$all" ]; then
    THREADS_OUT+="$(basename "$pcap"): json report with $CORES threads = 1 thread's (md5 ${one%% *})"$'\n'
  else
    THREADS_OUT+="$(basename "$pcap"): MISMATCH: the json report with $CORES threads differs from 1 thread's"$'\n'
    FAIL=1
  fi

  if [ "$skip_tshark" = 0 ]; then
    echo "== tshark on $pcap ($TSHARK_RUNS run(s); minutes per run)" >&2
    read -r t_s t_cpu t_kib t_st < <(run_timed "$TSHARK_RUNS" tshark -r "$pcap" \
      -d tcp.port==443,http -d tcp.port==9000,http \
      -Y websocket -T fields -e frame.number -e websocket.opcode)
    [ "$t_st" = 0 ] || FAIL=1
    ROWS+=("$(basename "$pcap") $bytes $packets tshark $t_s $t_cpu $t_kib $t_st")
  fi

  if [ "$SKIP_VERIFY" = 0 ]; then
    echo "== verifying wsprobe's report against $truth" >&2
    report="${pcap%.pcap}.wsprobe.json"
    "$WSPROBE" analyze --format json "$pcap" >"$report" 2>"$TMP/verify.stderr" || true
    set +e
    out=$(python3 - "$truth" "$report" "$STRICT" <<'PY'
import json, sys
from collections import Counter
truth_path, report_path, strict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
OPS = ["text", "binary", "continuation", "close", "ping", "pong"]
truth = json.load(open(truth_path))
status = {"MISMATCH": 0, "ABSENT": 0}
def line(field, verdict, detail=""):
    status[verdict] = status.get(verdict, 0) + 1
    print(f"  {field:<38} {verdict:<8} {detail}")
try:
    rep = json.load(open(report_path))
except Exception as e:  # wsprobe unfinished or crashed
    line("report", "ABSENT", f"unreadable JSON: {str(e)[:60]}")
    sys.exit(2 if strict else 0)
conns = rep.get("connections") if isinstance(rep, dict) else None
if not isinstance(conns, list):
    line("connections[]", "ABSENT")
    sys.exit(2 if strict else 0)

def addr(v):
    if isinstance(v, dict) and "ip" in v and "port" in v:
        return f"{v['ip']}:{v['port']}"
    return None

def cmp(field, want, got, detail=None):
    if got is None:
        line(field, "ABSENT")
    elif want == got:
        line(field, "MATCH", detail if detail is not None else f"{want}")
    else:
        line(field, "MISMATCH", f"truth {want} wsprobe {got}")

for key in ("packets", "bytes"):
    inputs = rep.get("inputs") or []
    got = sum(i.get(key, 0) for i in inputs) if inputs and all(key in i for i in inputs) else None
    cmp(f"inputs.{key}", truth[key], got)

ws = {}
for c in conns:
    k = (addr(c.get("client")), addr(c.get("server")))
    if None not in k:
        ws[k] = c
cmp("connections (count)", truth["connections"], len(conns))
keyed = bool(ws)
if not keyed:
    line("connections[].client/server", "ABSENT")

# frame totals by opcode, over both directions
tot = Counter()
have_frames = False
for c in conns:
    fr = c.get("frames")
    if isinstance(fr, dict):
        for d in ("client", "server"):
            if isinstance(fr.get(d), dict):
                have_frames = True
                for op, n in fr[d].items():
                    tot[op] += n
for op in OPS:
    cmp(f"frames.{op} (total)", truth["frames"][op], tot[op] if have_frames else None)
cmp("frames.other (total)", 0, tot["other"] if have_frames else None)

# per connection: frames by direction, outcome, close code, message counts
bad = Counter()
seen = Counter()
outcomes = Counter()
for t in truth["by_connection"]:
    c = ws.get((t["client"], t["server"]))
    if c is None:
        bad["missing"] += 1
        continue
    fr = c.get("frames") or {}
    for d in ("client", "server"):
        got = fr.get(d)
        if isinstance(got, dict):
            seen["frames"] += 1
            if any(got.get(op, 0) != t["frames"][d][op] for op in OPS) or got.get("other", 0):
                bad["frames"] += 1
    mc = c.get("message_counts")
    if isinstance(mc, dict):
        seen["messages"] += 1
        if mc.get("client") != t["messages"]["client"] or mc.get("server") != t["messages"]["server"]:
            bad["messages"] += 1
    close = c.get("close") or {}
    want_outcome = {"clean": "clean", "abnormal": "abnormal", "open": "open"}[t["ending"]]
    if "outcome" in close:
        seen["outcome"] += 1
        outcomes[close["outcome"]] += 1
        if close["outcome"] != want_outcome:
            bad["outcome"] += 1
    if t["ending"] == "clean" and "code" in close:
        seen["code"] += 1
        if close["code"] != t["close_code"]:
            bad["code"] += 1
n = truth["connections"]
if keyed:
    cmp("connections matched by address", n, n - bad["missing"])
for field, what, total in (("frames", "connections[].frames.client/.server", 2 * n),
                           ("outcome", "connections[].close.outcome", n),
                           ("code", "connections[].close.code (clean)", truth["endings"]["clean"]),
                           ("messages", "connections[].message_counts", n)):
    if not keyed or not seen[field]:
        line(what, "ABSENT")
    elif bad[field] == 0 and seen[field] == total:
        line(what, "MATCH", f"{total} checked")
    else:
        line(what, "MISMATCH", f"{bad[field]} wrong, {total - seen[field]} absent of {total}")
if keyed and seen["outcome"]:
    want = {k: v for k, v in truth["endings"].items() if v}
    cmp("endings (count by outcome)", want, dict(sorted(outcomes.items())))
sys.exit(1 if status["MISMATCH"] else (2 if strict and status["ABSENT"] else 0))
PY
)
    vst=$?
    set -e
    VERIFY_OUT+="$(basename "$pcap") vs $(basename "$truth"):"$'\n'"$out"$'\n'
    [ "$vst" = 1 ] && FAIL=1
    [ "$vst" = 2 ] && GOAL_FAIL=1
  fi
done

# ---- table
THREAD_GAIN=""
echo
printf '%-24s %8s %9s %-18s %9s %8s %8s %11s %9s %8s %9s\n' \
  file "size MB" packets tool seconds "cpu s" "MB/s" "packets/s" "RSS MiB" "ratio" "cpu ratio"
for row in "${ROWS[@]}"; do
  read -r f b p tool s cpu kib st <<<"$row"
  ratio=""
  cpu_ratio=""
  if [ "${tool#wsprobe}" != "$tool" ]; then
    for r2 in "${ROWS[@]}"; do
      read -r f2 _ _ tool2 s2 cpu2 _ st2 <<<"$r2"
      if [ "$f2" = "$f" ] && [ "$tool2" = tshark ]; then
        ratio="-"
        if [ "$st" != 0 ] || [ "$st2" != 0 ]; then continue; fi
        ratio=$(awk -v t="$s2" -v w="$s" 'BEGIN { if (w > 0) printf "%.1fx", t / w; else print "inf" }')
        cpu_ratio=$(awk -v t="$cpu2" -v w="$cpu" 'BEGIN { if (w > 0) printf "%.1fx", t / w; else print "inf" }')
        awk -v t="$s2" -v w="$s" 'BEGIN {exit !(w > 0 && t / w < 20)}' && GOAL_FAIL=1
      fi
      if [ "$f2" = "$f" ] && [ "$tool2" = wsprobe-1t ] && [ "$tool" != wsprobe-1t ] && [ "$st" = 0 ]; then
        THREAD_GAIN+="$f: $tool $(awk -v a="$s2" -v b="$s" 'BEGIN { if (b > 0) printf "%.2fx", a / b }') faster than 1 thread (wall)"$'\n'
      fi
    done
    awk -v k="$kib" 'BEGIN {exit !(k > 64 * 1024)}' && GOAL_FAIL=1
  fi
  [ "$st" = 0 ] || tool="$tool(exit $st)"
  awk -v f="$f" -v b="$b" -v p="$p" -v tool="$tool" -v s="$s" -v c="$cpu" -v k="$kib" -v r="$ratio" -v cr="$cpu_ratio" 'BEGIN {
    mb = b / 1e6; d = (s > 0 ? s : 0.001)
    printf "%-24s %8.1f %9d %-18s %9.2f %8.2f %8.1f %11.0f %9.1f %8s %9s\n", f, mb, p, tool, s, c, mb / d, p / d, k / 1024, r, cr }'
done
echo "(seconds = wall clock, best of the runs; cpu s = user+system of that run; ratio = tshark"
echo " seconds / wsprobe seconds, cpu ratio = the same in CPU seconds (steadier on a loaded machine); goals: ratio >= 20x, wsprobe peak RSS <= 64 MiB; load average"
echo " during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores)"
echo
printf '%s%s%s' "$THREAD_GAIN" "$THREADS_OUT" "$FORMATS_OUT"
if [ "$SKIP_MEMORY" = 0 ]; then
  echo
  echo "== cargo bench --bench memory -- $MEM_CONNECTIONS" >&2
  cargo bench --quiet --bench memory -- "$MEM_CONNECTIONS" 2>/dev/null | grep -v '^$' || FAIL=1
fi
if [ -n "$VERIFY_OUT" ]; then
  echo
  echo "wsprobe report vs ground truth:"
  printf '%s' "$VERIFY_OUT"
fi
if [ "$FAIL" = 1 ]; then exit 1; fi
if [ "$STRICT" = 1 ] && [ "$GOAL_FAIL" = 1 ]; then exit 1; fi
exit 0
