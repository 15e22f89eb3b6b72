#!/usr/bin/env bash
# Benchmarks. Not tests: nothing asserts on time; each prints its figures.
#
#   infra/bench.sh [webhook] [criterion args]  in-process cost of one webhook delivery per source
#                                              (route + verify + parse + fan-out + serialize; the
#                                              queue send replaced by a discarding queue). Criterion
#                                              prints `time: [low median high]` per source.
#   infra/bench.sh worker                      10,000 FreshBooks client and invoice events through
#                                              the Mailchimp worker against the sandboxes with the
#                                              10-connection limit on: records/s, vendor calls per
#                                              record, peak memory. BENCH_EVENTS and
#                                              BENCH_CONSUMERS (default 10000 and 10) change it.
#   infra/bench.sh hubspot                     a backfill of 10,000 FreshBooks clients and 10,000
#                                              invoices (3 lines each) through the HubSpot worker
#                                              into the sandbox at the Professional tier (190 calls
#                                              per 10 s): calls per 10 s against the bound, records
#                                              per HubSpot call, 429 share, wall time, peak RSS.
#                                              Minutes by design (the rate limit). BENCH_CLIENTS,
#                                              BENCH_INVOICES, BENCH_CONSUMERS (default 10000,
#                                              10000 and 4) change it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bench=webhook
if [[ "${1:-}" == "webhook" || "${1:-}" == "worker" || "${1:-}" == "hubspot" ]]; then
  bench=$1
  shift
fi
# --workspace keeps feature resolution identical to other builds, so dependencies are reused.
case "$bench" in
  webhook) exec cargo bench --workspace --bench webhook -- "$@" ;;
  worker) exec cargo bench --workspace --bench worker_mailchimp -- worker ;;
  hubspot) exec cargo bench --workspace --bench worker_hubspot -- hubspot ;;
esac
