#!/usr/bin/env bash
# Quick start 2: the whole test suite. CI (.ci/run) runs exactly this.
#
# The output of `cargo test` is also kept in TARGET/test-output.txt, TARGET being cargo's target
# directory wherever it is (CARGO_TARGET_DIR, a configured target-dir, or ./target). The exit
# status is cargo's: 0 after green tests, whatever happens to the log.
#
# WSPROBE_TEST_ONLY="ARGS" runs only `cargo test ARGS` (no fmt, clippy, fuzz or quick-start
# check): scripts/check-quickstart.sh uses it to check this script's plumbing cheaply.
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium + chromium-driver: the HTML report's browser tests (tests/integration/browser.rs);
# python3-venv: the DuckDB tests install the duckdb package into TARGET/duckdb-venv.
WSPROBE_EXTRA_PKGS="tshark tcpdump python3 python3-venv chromium chromium-driver ${WSPROBE_EXTRA_PKGS:-}" source scripts/setup.sh

target_dir=$(wsprobe_target_dir)
mkdir -p "$target_dir"
log="$target_dir/test-output.txt"

# Runs cargo test with ARGS, teeing into the log; returns cargo's own status.
run_tests() {
  local status
  set +e +o pipefail
  cargo test "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e -o pipefail
  if [ "$status" -ne 0 ]; then
    echo "test.sh: cargo test failed (exit $status); its output is in $log"
  fi
  return "$status"
}

if [ -n "${WSPROBE_TEST_ONLY:-}" ]; then
  # Word splitting of the arguments is wanted here.
  # shellcheck disable=SC2086
  run_tests $WSPROBE_TEST_ONLY
  exit 0
fi

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== file analysis builds without libpcap"
cargo check --no-default-features --quiet
echo "== cargo test"
run_tests --all-targets
echo "== the parquet feature (--table-format parquet): its build and its test"
cargo test --features parquet --test integration parquet 2>&1 | tee -a "$log"
echo "== quick start from a clean clone, with and without CARGO_TARGET_DIR"
bash scripts/check-quickstart.sh
echo "== fuzz (short run of every target)"
if cargo +nightly --version >/dev/null 2>&1; then
  bash scripts/fuzz.sh "${WSPROBE_FUZZ_SECONDS:-12}"
else
  echo "fuzz: skipped: no nightly toolchain"
fi
