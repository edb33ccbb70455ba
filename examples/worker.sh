#!/usr/bin/env bash
# A translation worker in a few lines of curl: claim, heartbeat, report progress, upload the
# result, complete (or fail). Needs curl and python3 (for JSON); usage:
#   KEY=<worker API key> ./examples/worker.sh [http://127.0.0.1:8080]
set -euo pipefail
API=${1:-http://127.0.0.1:8080}
auth=(-H "x-api-key: $KEY")
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf "${auth[@]}" -H 'content-type: application/json' -X POST "$API$1" -d "$2"; }

while true; do
  job=$(post /api/v1/worker/claim '{"kinds":["translation"]}') || { echo "claim failed" >&2; exit 1; }
  if [ -z "$job" ]; then sleep 1; continue; fi          # 204: nothing queued
  id=$(json "['job_id']" <<<"$job"); lease=$(json "['lease_id']" <<<"$job")
  doc=$(json "['document_id']" <<<"$job")
  echo "claimed $id (attempt $(json "['attempt']" <<<"$job"))"
  source_text=$(curl -sf "${auth[@]}" "$API/api/v1/documents/$doc")
  beat=$(post "/api/v1/worker/jobs/$id/heartbeat" "{\"lease_id\":\"$lease\"}")
  if [ "$(json "['cancelled']" <<<"$beat")" = "True" ]; then echo "cancelled $id"; continue; fi
  post "/api/v1/worker/jobs/$id/progress" "{\"lease_id\":\"$lease\",\"done\":1,\"total\":2}" >/dev/null
  translated=$(tr 'a-z' 'A-Z' <<<"$source_text")      # the "translation"
  result=$(curl -sf "${auth[@]}" -H 'content-type: text/plain' --data-binary "$translated" \
           "$API/api/v1/documents" | json "['document_id']")
  post "/api/v1/worker/jobs/$id/complete" \
       "{\"lease_id\":\"$lease\",\"result_document_id\":\"$result\",\"characters\":${#source_text},\"segments\":1}" >/dev/null \
    || post "/api/v1/worker/jobs/$id/fail" \
            "{\"lease_id\":\"$lease\",\"error_code\":\"worker.error\",\"message\":\"completing failed\",\"retryable\":true}" >/dev/null
  echo "completed $id -> result $result"
done
