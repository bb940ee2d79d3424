#!/usr/bin/env bash
# Quick start 1: build wsprobe and analyse the bundled demo capture.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --quiet
./target/release/wsprobe analyze captures/demo.pcap --messages "$@"
