#!/usr/bin/env bash
# Property-based fuzzing of `strata serve` against its OpenAPI description (docs/openapi.json,
# served at GET /openapi.json) with schemathesis: schema-valid and schema-invalid requests on
# every operation, for a bounded time. Part of the hardening job (make api-fuzz).
#
# Usage: tools/api_fuzz.sh BIN MODEL SECONDS [OUTDIR]
#   BIN      the strata binary (build/strata, or build-fuzz/strata for ASan+UBSan)
#   MODEL    a GGUF model (models/SmolLM2-135M-Instruct.Q4_1.gguf)
#   SECONDS  time budget of the schemathesis run (the whole script takes a little longer:
#            model load, server shutdown)
#   OUTDIR   logs and reports (default build/api-fuzz): server.log, schemathesis.log,
#            junit.xml, served-openapi.json, metrics.txt (scraped at the end), summary.txt
#
# Starts `BIN serve -m MODEL --host 127.0.0.1 --port 0 -t 1 --ctx 256 --parallel 2
# --api-key fuzzkey` (loopback only), runs schemathesis (pinned; installed into .venv if
# missing) on http://127.0.0.1:PORT/openapi.json with the bearer key, then stops the server.
# Exit status 1 on any finding: a failed check (by default no 5xx, responses conform to the
# documented schemas / statuses / media types, wrong methods answer 405 + Allow, protected
# routes refuse a missing key), a request timeout, /openapi.json missing or different from
# docs/openapi.json, the server dying or not stopping on SIGTERM, or a sanitizer report in
# its log.
#
# Environment: API_FUZZ_CHECKS (schemathesis --checks list), API_FUZZ_MAX_EXAMPLES (per
# operation and phase, default 25), API_FUZZ_MAX_TOKENS (generation cap, default 16),
# API_FUZZ_WORKERS (default 1), API_FUZZ_SEED, API_FUZZ_SERVER_ARGS (extra serve flags).
set -uo pipefail

if [[ $# -lt 3 || $# -gt 4 ]]; then
  echo "usage: $0 BIN MODEL SECONDS [OUTDIR]" >&2
  exit 2
fi
BIN=$1 MODEL=$2 SECS=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${4:-$ROOT/build/api-fuzz}
[[ $SECS =~ ^[0-9]+$ && $SECS -ge 10 ]] || { echo "api_fuzz: SECONDS must be an integer >= 10" >&2; exit 2; }
[[ -x $BIN ]] || { echo "api_fuzz: $BIN is not an executable (make build)" >&2; exit 2; }
[[ -f $MODEL ]] || { echo "api_fuzz: model $MODEL not found (make model)" >&2; exit 2; }

ST_VERSION=4.32.5
VENV=$ROOT/.venv
CHECKS=${API_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method,ignored_auth}
MAX_EXAMPLES=${API_FUZZ_MAX_EXAMPLES:-25}
# One worker: schemathesis runs workers as threads, and CPython 3.11 (Debian 12) can fail
# concurrent ast parsing inside Hypothesis with "SystemError: AST constructor recursion depth
# mismatch" (ast state shared between threads; cf. cpython gh-106905), a schemathesis error.
WORKERS=${API_FUZZ_WORKERS:-1}
KEY=fuzzkey

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT"/{server.log,schemathesis.log,junit.xml,served-openapi.json,metrics.txt,summary.txt}
FAILURES=()
fail() { FAILURES+=("$1"); echo "api_fuzz: FAIL: $1" >&2; }

# --- schemathesis, pinned, in the project venv (make venv creates it).
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" || { echo "api_fuzz: cannot create $VENV" >&2; exit 2; }
if [[ $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null) != "$ST_VERSION" ]]; then
  echo "api_fuzz: installing schemathesis==$ST_VERSION into $VENV" >&2
  "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION" || { echo "api_fuzz: pip install schemathesis==$ST_VERSION failed" >&2; exit 2; }
fi

# --- the server, on loopback, any free port.
# shellcheck disable=SC2086  # API_FUZZ_SERVER_ARGS is a list of flags
"$BIN" serve -m "$MODEL" --host 127.0.0.1 --port 0 -t 1 --ctx 256 --parallel 2 --api-key "$KEY" \
  ${API_FUZZ_SERVER_ARGS:-} 2>"$OUT/server.log" >/dev/null &
SERVER_PID=$!
stop_server() {
  [[ -n ${SERVER_PID:-} ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      fail "the server did not stop within 10 s of SIGTERM"
      kill -KILL "$SERVER_PID" 2>/dev/null
    fi
  fi
  wait "$SERVER_PID"
  SERVER_RC=$?
  SERVER_PID=
}
trap 'stop_server; exit 130' INT TERM

PORT=
for _ in $(seq 1 600); do  # model load; slow under ASan
  PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$OUT/server.log" | head -1)
  [[ -n $PORT ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $PORT ]]; then
  echo "api_fuzz: the server did not start; log tail:" >&2
  tail -20 "$OUT/server.log" >&2
  stop_server
  exit 1
fi
BASE=http://127.0.0.1:$PORT
echo "api_fuzz: server pid $SERVER_PID on $BASE; ${SECS}s; checks $CHECKS; logs in $OUT" >&2

# --- the schema the server serves must be docs/openapi.json (embedded at build time).
SCHEMA=$BASE/openapi.json
code=$(curl -s -o "$OUT/served-openapi.json" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$SCHEMA")
if [[ $code != 200 ]]; then
  fail "GET /openapi.json answered $code (expected 200); fuzzing with docs/openapi.json instead"
  SCHEMA=$ROOT/docs/openapi.json
elif ! "$VENV/bin/python" - "$OUT/served-openapi.json" "$ROOT/docs/openapi.json" <<'PY'
import json, sys
sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))
PY
then
  fail "GET /openapi.json differs from docs/openapi.json (stale build?)"
fi

# --- hooks: keep generation short. Hypothesis draws max_tokens anywhere in [1, 2^63) and
# often omits it (= until the 256-token context is full); both are capped at
# API_FUZZ_MAX_TOKENS so each generating request takes a fraction of a second. Only
# schema-valid values are changed; invalid ones (negative cases) are sent as generated.
mkdir -p "$OUT/hooks"
cat >"$OUT/hooks/api_fuzz_hooks.py" <<'PY'
import os

import schemathesis

CAP = int(os.environ.get("API_FUZZ_MAX_TOKENS", "16"))
GENERATING = {"/v1/chat/completions", "/v1/completions"}


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if case.operation.path not in GENERATING or not isinstance(body, dict):
        return
    key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    value = body.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value > CAP):
        body[key] = CAP
PY

# Wrong-method probes: schemathesis also sends QUERY (an HTTP method still in draft), which
# cpp-httplib 0.11 (Debian 12) rejects with 400 while parsing the request line, before any
# server code runs; the other methods must answer 405 with Allow.
cat >"$OUT/schemathesis.toml" <<'TOML'
[phases.coverage]
unexpected-methods = ["get", "put", "post", "delete", "options", "patch", "trace"]
TOML

ST_ARGS=(--config-file "$OUT/schemathesis.toml" run "$SCHEMA" -H "Authorization: Bearer $KEY" --checks "$CHECKS"
         --max-examples "$MAX_EXAMPLES" --max-time "$SECS" --workers "$WORKERS"
         --request-timeout 60 --generation-database "$OUT/hypothesis-db"
         --suppress-health-check "too_slow,filter_too_much,data_too_large"
         --report junit --report-junit-path "$OUT/junit.xml" --no-color)
[[ $SCHEMA == "$BASE"* ]] || ST_ARGS+=(--url "$BASE")
[[ -n ${API_FUZZ_SEED:-} ]] && ST_ARGS+=(--seed "$API_FUZZ_SEED")
echo "api_fuzz: st ${ST_ARGS[*]}" | sed "s/Bearer $KEY/Bearer ***/" >"$OUT/schemathesis.log"
# --max-time bounds the run; timeout(1) is the backstop for a hung client or server.
# Run from OUTDIR: schemathesis keeps its replay cache (.schemathesis/) in the working directory.
(cd "$OUT" && PYTHONPATH=$OUT/hooks SCHEMATHESIS_HOOKS=api_fuzz_hooks API_FUZZ_MAX_TOKENS=${API_FUZZ_MAX_TOKENS:-16} \
  timeout -k 10 $((SECS + 120)) "$VENV/bin/st" "${ST_ARGS[@]}" >>"$OUT/schemathesis.log" 2>&1)
st_rc=$?
case $st_rc in
  0) ;;
  124|137) fail "schemathesis did not finish within $((SECS + 120)) s" ;;
  *) fail "schemathesis reported failures or errors (exit $st_rc); see $OUT/schemathesis.log" ;;
esac

# --- the server must have survived, still answer, and stop cleanly.
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  fail "the server died during the run"
elif [[ $(curl -s -o /dev/null -w '%{http_code}' "$BASE/health") != 200 ]]; then
  fail "GET /health does not answer 200 after the run"
else
  curl -s -H "Authorization: Bearer $KEY" "$BASE/metrics" >"$OUT/metrics.txt"
fi
SERVER_RC=0
stop_server
trap - INT TERM
[[ $SERVER_RC -eq 0 ]] || fail "the server exited with status $SERVER_RC"
if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|terminate called' "$OUT/server.log"; then
  fail "sanitizer report or uncaught exception in $OUT/server.log"
fi

{
  echo "schemathesis $ST_VERSION, ${SECS}s, checks $CHECKS, max examples $MAX_EXAMPLES, workers $WORKERS"
  sed -n '/ SUMMARY /,$p' "$OUT/schemathesis.log"
  [[ -s $OUT/metrics.txt ]] && grep -E '^strata_(requests_finished_total|generated_tokens_total|requests_rejected_total) ' "$OUT/metrics.txt"
  if [[ ${#FAILURES[@]} -eq 0 ]]; then echo "RESULT: ok"; else printf 'FAIL: %s\n' "${FAILURES[@]}"; fi
} >"$OUT/summary.txt"
if [[ ${#FAILURES[@]} -gt 0 ]]; then
  echo "api_fuzz: ${#FAILURES[@]} failure(s); schemathesis log tail:" >&2
  tail -60 "$OUT/schemathesis.log" >&2
  exit 1
fi
echo "api_fuzz: ok (log $OUT/schemathesis.log)" >&2
