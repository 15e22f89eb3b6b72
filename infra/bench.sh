#!/usr/bin/env bash
# Webhook handler benchmark: in-process cost of one delivery per source (route + verify + parse +
# fan-out + serialize; the queue send is replaced by a discarding queue). Criterion prints a
# `time: [low median high]` line per source. Not a test: nothing asserts on time.
#
# Usage: infra/bench.sh [criterion args, e.g. a filter such as `stripe`]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# --workspace keeps feature resolution identical to other builds, so dependencies are reused.
exec cargo bench --workspace --bench webhook -- "$@"
