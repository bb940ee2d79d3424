#!/usr/bin/env bash
# Checks the README's two quick-start commands, scripts/demo.sh and scripts/test.sh, from a
# clean clone of HEAD (plus uncommitted changes to tracked files): once with CARGO_TARGET_DIR unset and once with it set to a directory
# outside the clone. Run by scripts/test.sh after the suite; exits 1 on the first failure.
#
# Built to be cheap (about 30 s on 2 cores once the suite has run) and still honest:
# - `git clone --local`: hard links, no copy; only committed files, so nothing local helps.
# - Two real target directories, clone/target and a temporary CARGO_TARGET_DIR, each where
#   cargo puts the binaries it links: a script that looks for ./target/... when CARGO_TARGET_DIR
#   is set finds nothing and fails. Only their debug/{deps,build,.fingerprint} are symlinks
#   into this checkout's target directory, so the dependencies the suite built are reused and
#   wsprobe alone is compiled (once for both runs; the clone's path gives its artifacts their
#   own hashes, so this checkout's are left alone).
# - demo.sh builds the dev profile (WSPROBE_PROFILE=dev): a second release build is minutes
#   here. test.sh runs only `cargo test --bin wsprobe` (WSPROBE_TEST_ONLY), a harness with no
#   tests: what is checked is the scripts' plumbing (where the binary is, where the log goes,
#   the exit status after green and after failing tests), not the suite, which just ran.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
source scripts/setup.sh
origin_target=$(wsprobe_target_dir)

# A fixed place, so that each run's wsprobe artifacts replace the last run's instead of piling
# up in the shared deps directory (their hashes follow the clone's path).
# (Outside every Cargo.toml's directory: cargo must see the clone as a project of its own.)
scratch="${TMPDIR:-/tmp}/wsprobe-quickstart-$(printf '%s' "$here" | cksum | cut -d' ' -f1)"
rm -rf "$scratch"
mkdir -p "$scratch"
trap 'rm -rf "$scratch"' EXIT
clone="$scratch/clone"
git clone --quiet --local "$here" "$clone"
# Uncommitted changes to tracked files are part of what is checked (untracked files are not).
if ! git diff --quiet HEAD; then
  git diff --binary HEAD | git -C "$clone" apply --whitespace=nowarn
  echo "check-quickstart: HEAD plus the uncommitted changes to tracked files"
fi

# A target directory of its own whose intermediate build directories are this checkout's.
share_deps() {
  mkdir -p "$1/debug"
  for d in deps build .fingerprint; do
    mkdir -p "$origin_target/debug/$d"
    ln -s "$origin_target/debug/$d" "$1/debug/$d"
  done
}

fail() {
  echo "check-quickstart: $*" >&2
  exit 1
}

# check NAME [ENV=VALUE...]: both scripts in the clone with that environment.
check() {
  local name=$1
  shift
  local out="$scratch/$name"
  echo "-- $name: scripts/demo.sh"
  if ! (cd "$clone" && env "$@" CARGO_INCREMENTAL=0 WSPROBE_PROFILE=dev bash scripts/demo.sh) \
    >"$out.demo" 2>&1; then
    tail -n 20 "$out.demo" >&2
    fail "$name: scripts/demo.sh failed"
  fi
  grep -q "1000 Normal Closure" "$out.demo" \
    || fail "$name: scripts/demo.sh did not print the demo's report (see above)"
  echo "-- $name: scripts/test.sh"
  local status=0
  (cd "$clone" && env "$@" CARGO_INCREMENTAL=0 WSPROBE_TEST_ONLY="--bin wsprobe" \
    bash scripts/test.sh) >"$out.test" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    tail -n 20 "$out.test" >&2
    fail "$name: scripts/test.sh exited $status after green tests"
  fi
  grep -q "test result: ok" "$out.test" || fail "$name: scripts/test.sh ran no tests"
  echo "-- $name: scripts/test.sh fails when cargo test fails"
  if (cd "$clone" && env "$@" CARGO_INCREMENTAL=0 \
    WSPROBE_TEST_ONLY="--bin wsprobe --no-such-option" bash scripts/test.sh) \
    >"$out.fail" 2>&1; then
    fail "$name: scripts/test.sh exited 0 although cargo test failed"
  fi
}

share_deps "$clone/target"
check "without CARGO_TARGET_DIR" -u CARGO_TARGET_DIR
[ -f "$clone/target/test-output.txt" ] || fail "no test log in the clone's target/"

# The clone's own target directory goes away, so nothing can be found there by accident.
rm -rf "$clone/target"
share_deps "$scratch/elsewhere"
check "with CARGO_TARGET_DIR" CARGO_TARGET_DIR="$scratch/elsewhere"
[ -f "$scratch/elsewhere/test-output.txt" ] || fail "no test log in CARGO_TARGET_DIR"
[ ! -e "$clone/target" ] || fail "a build wrote to the clone's target/ although CARGO_TARGET_DIR was set"
echo "check-quickstart: ok"
