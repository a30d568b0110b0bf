#!/usr/bin/env bash
# The whole test suite, on a fresh machine or CI: formatting, clippy, docs, every test.
#
#   scripts/test.sh
#
# It starts what the tests need and stops it afterwards:
#   * PostgreSQL: $DATABASE_URL when set, else a private server (scripts/postgres.sh, which
#     installs Debian's postgresql first when it is missing and we are root);
#   * a search node: $ELASTICSEARCH_URL when set, else an OpenSearch 2.19 node in a JVM
#     (scripts/opensearch.sh, built from Maven Central artifacts under tools/).
# Builds go to $CARGO_TARGET_DIR (default /var/tmp/cqrs-target) so they are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cqrs-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step() { printf '\n==> %s\n' "$*" >&2; }

started_pg=""
started_es=""
cleanup() {
  if [ -n "$started_es" ]; then scripts/opensearch.sh stop >&2 || true; fi
  if [ -n "$started_pg" ]; then scripts/postgres.sh stop >&2 || true; fi
}
trap cleanup EXIT

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

step "PostgreSQL"
if [ -z "${DATABASE_URL:-}" ]; then started_pg=1; fi
DATABASE_URL="$(scripts/postgres.sh start | tail -n 1)"
export DATABASE_URL="${DATABASE_URL#DATABASE_URL=}"
echo "using DATABASE_URL=$DATABASE_URL" >&2

step "search node"
if [ -n "${ELASTICSEARCH_URL:-}" ]; then
  if ! curl -fsS "$ELASTICSEARCH_URL/_cluster/health?wait_for_status=yellow&timeout=60s" >/dev/null; then
    echo "ELASTICSEARCH_URL=$ELASTICSEARCH_URL does not answer; unset it to let this script start a node" >&2
    exit 1
  fi
else
  started_es=1
  ELASTICSEARCH_URL="$(scripts/opensearch.sh start "${OPENSEARCH_PORT:-9200}" | tail -n 1)"
  export ELASTICSEARCH_URL="${ELASTICSEARCH_URL#ELASTICSEARCH_URL=}"
fi
echo "using ELASTICSEARCH_URL=$ELASTICSEARCH_URL" >&2

step "cargo test"
cargo test --workspace --all-features

step "quick start: in memory, on PostgreSQL, on PostgreSQL with the search node"
env -u DATABASE_URL -u ELASTICSEARCH_URL cargo run --quiet -p quickstart >/dev/null
env -u ELASTICSEARCH_URL cargo run --quiet -p quickstart >/dev/null
cargo run --quiet -p quickstart >/dev/null
echo "quick start ran in all three modes" >&2
