#!/usr/bin/env bash
# The whole test suite, on a fresh machine or CI: formatting, clippy, docs, every test.
#
#   scripts/test.sh
#
# It starts what the tests need and stops it afterwards:
#   * PostgreSQL: $DATABASE_URL when set, else a private server (scripts/postgres.sh, which
#     installs Debian's postgresql first when it is missing and we are root);
#   * a second, fresh PostgreSQL cluster that tests restore a pg_dump into (a move to a cluster
#     whose transaction counter is behind): $RESTORE_DATABASE_URL when set, else a private one
#     in $PG_RESTORE_WORKDIR (default /var/tmp/cqrs-pg-restore) on port $PG_RESTORE_PORT
#     (default 54331), initialised anew on every run;
#   * a search node: $ELASTICSEARCH_URL when set, else an OpenSearch 2.19 node in a JVM
#     (scripts/opensearch.sh, built from Maven Central artifacts under tools/);
#   * Jaeger, for the end-to-end trace test: $JAEGER_QUERY_URL and $JAEGER_OTLP_ENDPOINT when
#     set (its query API, and where it receives OTLP over HTTP), else one built with Go from
#     the module proxy and started by scripts/jaeger.sh;
#   * Kafka, for the event bus: $KAFKA_BOOTSTRAP_SERVERS when set (checked: a metadata request
#     must answer), else a single-node Kafka 3.9 in KRaft mode (scripts/kafka.sh, built from
#     Maven Central artifacts under tools/) on $KAFKA_PORT or a free port;
#   * Toxiproxy, for the chaos tests: $TOXIPROXY_URL when set (checked: its API must answer),
#     else one built with Go from the module proxy and started by scripts/toxiproxy.sh;
#   * a WebDriver server, for the web console's browser tests: $WEBDRIVER_URL when set (checked:
#     its /status must say ready), else Debian's chromium and chromedriver (scripts/chromium.sh,
#     which installs them when missing and we are root) on a free port. Screenshots of each
#     console page go to $CONSOLE_SCREENSHOTS (default $CARGO_TARGET_DIR/console-screenshots).
# Builds go to $CARGO_TARGET_DIR (default /var/tmp/cqrs-target) so they are reused.
# URLs are printed with their passwords masked (user:****@host).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/url.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/cqrs-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# A build from scratch gains nothing from incremental state, which adds about 4 GiB to the target.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

step() { printf '\n==> %s\n' "$*" >&2; }

started_pg=""
started_restore=""
started_es=""
started_jaeger=""
started_kafka=""
started_toxiproxy=""
started_chromium=""
restore_cluster() {
  env -u DATABASE_URL PG_WORKDIR="${PG_RESTORE_WORKDIR:-/var/tmp/cqrs-pg-restore}" \
    PG_PORT="${PG_RESTORE_PORT:-54331}" "$@"
}
cleanup() {
  if [ -n "$started_toxiproxy" ]; then scripts/toxiproxy.sh stop >&2 || true; fi
  if [ -n "$started_chromium" ]; then scripts/chromium.sh stop >&2 || true; fi
  if [ -n "$started_kafka" ]; then scripts/kafka.sh stop >&2 || true; fi
  if [ -n "$started_jaeger" ]; then scripts/jaeger.sh stop >&2 || true; fi
  if [ -n "$started_es" ]; then scripts/opensearch.sh stop >&2 || true; fi
  if [ -n "$started_restore" ]; then restore_cluster scripts/postgres.sh stop >&2 || true; fi
  if [ -n "$started_pg" ]; then scripts/postgres.sh stop >&2 || true; fi
}
trap cleanup EXIT

# Marks server $1 as started by this run (so stopped at its end), unless its script says one of
# its own is running already (started by hand, or by another run): that one is reused and left
# running.
mark_started() {
  local var="$1"
  shift
  if ! "$@" status >/dev/null 2>&1; then
    printf -v "$var" 1
  fi
}

# The build needs room: about 16 GiB for a target built from scratch (every test is a binary of
# its own). A full disk shows up as a linker's bus error minutes later; say it now instead.
step "disk space"
mkdir -p "$CARGO_TARGET_DIR"
need_gib="${CQRS_MIN_FREE_GIB:-16}"
free_gib=$(( $(df -Pk "$CARGO_TARGET_DIR" | awk 'NR == 2 { print $4 }') / 1048576 ))
echo "test.sh: ${free_gib} GiB free for $CARGO_TARGET_DIR" >&2
if [ "$free_gib" -lt "$need_gib" ]; then
  if [ -d "$CARGO_TARGET_DIR/debug/deps" ]; then
    echo "test.sh: warning: less than ${need_gib} GiB free; a build reusing this target may still fit" >&2
  else
    echo "test.sh: less than ${need_gib} GiB free to build the suite; free some (old cargo targets?) or set CQRS_MIN_FREE_GIB" >&2
    exit 1
  fi
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

step "PostgreSQL"
if [ -z "${DATABASE_URL:-}" ]; then
  mark_started started_pg scripts/postgres.sh
  DATABASE_URL="$(scripts/postgres.sh start | tail -n 1)"
  export DATABASE_URL="${DATABASE_URL#DATABASE_URL=}"
else
  scripts/postgres.sh start >/dev/null # only checks it; its output drops the password
fi
echo "using DATABASE_URL=$(redact_url "$DATABASE_URL")" >&2

step "second PostgreSQL cluster (restore target)"
if [ -z "${RESTORE_DATABASE_URL:-}" ]; then
  started_restore=1
  RESTORE_DATABASE_URL="$(restore_cluster env PG_FRESH=1 scripts/postgres.sh start | tail -n 1)"
  export RESTORE_DATABASE_URL="${RESTORE_DATABASE_URL#DATABASE_URL=}"
else
  DATABASE_URL="$RESTORE_DATABASE_URL" scripts/postgres.sh start >/dev/null
fi
echo "using RESTORE_DATABASE_URL=$(redact_url "$RESTORE_DATABASE_URL")" >&2

step "search node"
if [ -n "${ELASTICSEARCH_URL:-}" ]; then
  if ! curl_url "$ELASTICSEARCH_URL/_cluster/health?wait_for_status=yellow&timeout=60s" -fsS >/dev/null; then
    echo "ELASTICSEARCH_URL=$(redact_url "$ELASTICSEARCH_URL") does not answer; unset it to let this script start a node" >&2
    exit 1
  fi
else
  mark_started started_es scripts/opensearch.sh
  ELASTICSEARCH_URL="$(scripts/opensearch.sh start "${OPENSEARCH_PORT:-9200}" | tail -n 1)"
  export ELASTICSEARCH_URL="${ELASTICSEARCH_URL#ELASTICSEARCH_URL=}"
fi
echo "using ELASTICSEARCH_URL=$(redact_url "$ELASTICSEARCH_URL")" >&2

step "Jaeger"
if [ -n "${JAEGER_QUERY_URL:-}" ]; then
  if [ -z "${JAEGER_OTLP_ENDPOINT:-}" ]; then
    echo "JAEGER_QUERY_URL is set but JAEGER_OTLP_ENDPOINT is not (where that Jaeger receives OTLP over HTTP)" >&2
    exit 1
  fi
else
  mark_started started_jaeger scripts/jaeger.sh
  jaeger_urls="$(scripts/jaeger.sh start)"
  JAEGER_QUERY_URL="$(grep '^JAEGER_QUERY_URL=' <<<"$jaeger_urls" | tail -n 1)"
  JAEGER_OTLP_ENDPOINT="$(grep '^OTEL_EXPORTER_OTLP_ENDPOINT=' <<<"$jaeger_urls" | tail -n 1)"
  export JAEGER_QUERY_URL="${JAEGER_QUERY_URL#JAEGER_QUERY_URL=}"
  export JAEGER_OTLP_ENDPOINT="${JAEGER_OTLP_ENDPOINT#OTEL_EXPORTER_OTLP_ENDPOINT=}"
fi
echo "using JAEGER_QUERY_URL=$(redact_url "$JAEGER_QUERY_URL") JAEGER_OTLP_ENDPOINT=$(redact_url "$JAEGER_OTLP_ENDPOINT")" >&2

step "Kafka"
if [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  if ! scripts/kafka.sh check "$KAFKA_BOOTSTRAP_SERVERS"; then
    echo "KAFKA_BOOTSTRAP_SERVERS=$(sed -E 's/[^,@]*@/****@/g' <<<"$KAFKA_BOOTSTRAP_SERVERS") does not answer; unset it to let this script start a broker" >&2
    exit 1
  fi
else
  mark_started started_kafka scripts/kafka.sh
  KAFKA_BOOTSTRAP_SERVERS="$(scripts/kafka.sh start "${KAFKA_PORT:-}" | tail -n 1)"
  export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS#KAFKA_BOOTSTRAP_SERVERS=}"
fi
echo "using KAFKA_BOOTSTRAP_SERVERS=$(sed -E 's/[^,@]*@/****@/g' <<<"$KAFKA_BOOTSTRAP_SERVERS")" >&2

step "Toxiproxy"
if [ -n "${TOXIPROXY_URL:-}" ]; then
  if ! curl_url "$TOXIPROXY_URL/version" -fsS --max-time 5 -o /dev/null; then
    echo "TOXIPROXY_URL=$(redact_url "$TOXIPROXY_URL") does not answer; unset it to let this script start one" >&2
    exit 1
  fi
else
  mark_started started_toxiproxy scripts/toxiproxy.sh
  TOXIPROXY_URL="$(scripts/toxiproxy.sh start | tail -n 1)"
  export TOXIPROXY_URL="${TOXIPROXY_URL#TOXIPROXY_URL=}"
fi
echo "using TOXIPROXY_URL=$(redact_url "$TOXIPROXY_URL")" >&2

step "Chromium (WebDriver)"
if [ -n "${WEBDRIVER_URL:-}" ]; then
  if ! scripts/chromium.sh check; then # reads WEBDRIVER_URL: no URL on a command line
    echo "WEBDRIVER_URL=$(redact_url "$WEBDRIVER_URL") is not a ready WebDriver server; unset it to let this script start chromedriver" >&2
    exit 1
  fi
else
  mark_started started_chromium scripts/chromium.sh
  WEBDRIVER_URL="$(scripts/chromium.sh start | tail -n 1)"
  export WEBDRIVER_URL="${WEBDRIVER_URL#WEBDRIVER_URL=}"
fi
export CONSOLE_SCREENSHOTS="${CONSOLE_SCREENSHOTS:-$CARGO_TARGET_DIR/console-screenshots}"
echo "using WEBDRIVER_URL=$(redact_url "$WEBDRIVER_URL"); screenshots in $CONSOLE_SCREENSHOTS" >&2

step "cargo test"
cargo test --workspace --all-features --no-fail-fast

step "quick start: in memory, on PostgreSQL, on PostgreSQL with the search node"
# A run counts only when it printed what it ends with in every mode: its banner names the
# mode, the read side's query answers match the walkthrough, and the read side is healthy.
quickstart() {
  local banner="$1" out
  shift
  if ! out="$(env "$@" cargo run --quiet -p quickstart)"; then
    echo "quick start ($banner) failed; it printed:" >&2
    printf '%s\n' "${out:-}" >&2
    exit 1
  fi
  local expected
  for expected in "cqrs quick start: $banner" \
    "  by status       shipped 1, cancelled 2" \
    "  bob, cancelled  order 2 " \
    "  health          "; do
    if ! grep -qF -- "$expected" <<<"$out"; then
      echo "quick start ($banner) did not print \"$expected\"; it printed:" >&2
      printf '%s\n' "$out" >&2
      exit 1
    fi
  done
  local health
  health="$(grep -F -- "  health          " <<<"$out" | tail -n 1)"
  if [[ "$health" != *", ready" ]]; then
    echo "quick start ($banner) ended with its read side not ready: $health" >&2
    exit 1
  fi
}
quickstart "in-memory event store, read side in memory" -u DATABASE_URL -u ELASTICSEARCH_URL
quickstart "PostgreSQL (schema quickstart), read side in memory" -u ELASTICSEARCH_URL
quickstart "PostgreSQL (schema quickstart), read side on " -u NO_SUCH_VARIABLE
echo "quick start ran in all three modes and printed its read side's answers" >&2
