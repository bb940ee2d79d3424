#!/usr/bin/env bash
# Quick start 1: build wsprobe and analyse the bundled demo capture. Runs the binary where cargo
# says it built it, so CARGO_TARGET_DIR or a configured target-dir do not matter.
# WSPROBE_PROFILE picks the cargo profile (default release; scripts/check-quickstart.sh uses dev).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
bin=$(wsprobe_build "${WSPROBE_PROFILE:-release}")
"$bin" analyze captures/demo.pcap --messages "$@"
