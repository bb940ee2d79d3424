#!/usr/bin/env bash
# Installs what building and testing wsprobe needs, only what is missing, on Debian/Ubuntu.
# Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in build-essential pkg-config libpcap-dev ${WSPROBE_EXTRA_PKGS:-}; do
  have_pkg "$pkg" || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need_pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer before installing.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections 2>/dev/null || true
  # Wait for another apt (a parallel job, unattended upgrades) instead of failing at once.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing Rust (rustup, minimal profile)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

# Where cargo puts its build: CARGO_TARGET_DIR, build.target-dir in a config, or ./target.
# Asked of cargo itself, never assumed.
wsprobe_target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# Builds the wsprobe binary with cargo profile $1 (release, dev, ...) and prints its path, as
# cargo reports it (so it is right whatever the target directory is).
wsprobe_build() {
  local exe
  exe=$(cargo build --quiet --profile "$1" --bin wsprobe --message-format=json-render-diagnostics \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    echo "setup: cargo built no wsprobe binary (profile $1)" >&2
    return 1
  fi
  printf '%s\n' "$exe"
}
