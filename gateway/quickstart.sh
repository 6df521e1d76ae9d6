#!/bin/sh
# ashgate quickstart, curl only: create a system API key with the admin secret, then send one
# OTLP/JSON trace through the gateway's Phoenix-compatible endpoint with that key.
#
#   PHOENIX_ADMIN_SECRET=... sh gateway/quickstart.sh
#
# PHOENIX_URL defaults to http://127.0.0.1:6006 (add the root path if PHOENIX_HOST_ROOT_PATH is set).
set -eu

PHOENIX_URL="${PHOENIX_URL:-http://127.0.0.1:6006}"
: "${PHOENIX_ADMIN_SECRET:?set PHOENIX_ADMIN_SECRET to the server's admin secret}"
PROJECT="${PHOENIX_PROJECT:-quickstart}"

# 1. A system API key (shown once: keep it).
created=$(curl -fsS -X POST "$PHOENIX_URL/v1/system/api_keys" \
  -H "Authorization: Bearer $PHOENIX_ADMIN_SECRET" \
  -H "Content-Type: application/json" \
  -d '{"data": {"name": "quickstart", "description": "created by quickstart.sh"}}')
key=$(printf '%s' "$created" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
if [ -z "$key" ]; then
  echo "quickstart: no key in the answer: $created" >&2
  exit 1
fi

# 2. One span, as OTLP/JSON, to POST /v1/traces on the gateway.
now=$(date +%s)
start="${now}000000000"
end="$((now + 1))000000000"
trace_id=$(printf '%032x' "$now")
curl -fsS -o /dev/null -X POST "$PHOENIX_URL/v1/traces" \
  -H "Authorization: Bearer $key" \
  -H "Content-Type: application/json" \
  -d "{\"resourceSpans\": [{
        \"resource\": {\"attributes\": [{\"key\": \"openinference.project.name\", \"value\": {\"stringValue\": \"$PROJECT\"}}]},
        \"scopeSpans\": [{\"spans\": [{
          \"traceId\": \"$trace_id\", \"spanId\": \"00000000000000a1\", \"name\": \"quickstart\", \"kind\": 1,
          \"startTimeUnixNano\": \"$start\", \"endTimeUnixNano\": \"$end\",
          \"attributes\": [{\"key\": \"openinference.span.kind\", \"value\": {\"stringValue\": \"CHAIN\"}}],
          \"status\": {\"code\": 1}
        }]}]
      }]}"

echo "Sent one span to project '$PROJECT'."
echo "Read it back:  curl -H \"Authorization: Bearer \$PHOENIX_API_KEY\" $PHOENIX_URL/v1/projects/$PROJECT/spans"
echo "PHOENIX_API_KEY=$key"
