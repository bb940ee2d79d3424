#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 30) with libFuzzer,
# starting from the committed seeds (fuzz/seeds/<target>/) and the local corpus
# (fuzz/corpus/<target>/, not committed). Installs cargo-fuzz when missing; needs a nightly
# toolchain. Exits 1 if any target found a crash (the input is in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh            # 30 s per target
#   scripts/fuzz.sh 600        # a longer campaign
#   FUZZ_TARGETS="frame http" scripts/fuzz.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-30}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  if ! cargo install cargo-fuzz --locked --quiet; then
    echo "fuzz: skipped: cargo-fuzz could not be installed"
    exit 0
  fi
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
echo "== fuzz: building"
if ! cargo +nightly fuzz build >fuzz/build.log 2>&1; then
  grep -E '^(error|warning: unused)' -A6 fuzz/build.log | head -40
  echo "fuzz: the fuzz crate does not build against the library (see fuzz/build.log)"
  exit 1
fi

# Longest input per target: a little more than the largest seed.
max_len() {
  case "$1" in
    http) echo 8192 ;;
    frame) echo 20000 ;;
    *) echo 65536 ;;
  esac
}

failed=()
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
  log="fuzz/artifacts/$t/last-run.log"
  echo "== fuzz: $t for ${duration}s"
  if cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
      -max_total_time="$duration" -max_len="$(max_len "$t")" -timeout=20 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    echo "   ok: $execs execs, $cov"
  else
    echo "   FAILED: see $log"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 || true
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (reproduce: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...)"
  exit 1
fi
echo "fuzz: no crashes"
