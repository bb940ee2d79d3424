#!/usr/bin/env bash
# Quick start 2: the whole test suite. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# chromium + chromium-driver: the HTML report's browser tests (tests/integration/browser.rs);
# python3-venv: the DuckDB tests install the duckdb package into target/duckdb-venv.
WSPROBE_EXTRA_PKGS="tshark tcpdump python3 python3-venv chromium chromium-driver ${WSPROBE_EXTRA_PKGS:-}" source scripts/setup.sh

rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== file analysis builds without libpcap"
cargo check --no-default-features --quiet
echo "== cargo test"
cargo test --all-targets 2>&1 | tee target/test-output.txt
echo "== the parquet feature (--table-format parquet): its build and its test"
cargo test --features parquet --test integration parquet 2>&1 | tee -a target/test-output.txt
echo "== fuzz (short run of every target)"
if cargo +nightly --version >/dev/null 2>&1; then
  bash scripts/fuzz.sh "${WSPROBE_FUZZ_SECONDS:-12}"
else
  echo "fuzz: skipped: no nightly toolchain"
fi
