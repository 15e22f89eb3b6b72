#!/usr/bin/env bash
# Cold-start benchmark for the Lambda binaries (a local proxy for Lambda init duration).
#
# Builds every workspace binary in release mode (one workspace-wide build: `-p` would change
# feature resolution and rebuild dependencies), then runs `coldstart`, which times exec ->
# first `GET /2018-06-01/runtime/invocation/next` against a fake runtime API on loopback,
# interleaving `webhook` and the `hello_lambda` baseline.
#
# Usage: infra/bench-coldstart.sh [coldstart options]
#   --runs N        runs per binary (default 41)
#   --probe         also time coldstart_probe_sdk (naive SDK client vs webpki roots)
#   --strace DIR    instead of timing, list file accesses before the first `next`
#                   (needs strace: apt-get install -y strace)
# Set SKIP_BUILD=1 to reuse existing release binaries.
# Nothing here asserts on time; read the result block.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build --release --workspace --bins
fi

target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
exec "$target_dir/release/coldstart" "$@"
