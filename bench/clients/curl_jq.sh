#!/usr/bin/env bash
# The documented shell pipeline: curl | jq | base64 -d.
#   bash curl_jq.sh BASE_URL MODEL PROMPT OUT
set -euo pipefail
base_url=$1 model=$2 prompt=$3 out=$4
curl -sS --fail-with-body -X POST "$base_url/v1beta/models/$model:generateContent" \
  -H "x-goog-api-key: test-key" -H "Content-Type: application/json" \
  -d "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"$prompt\"}]}]}" |
  jq -r '.candidates[0].content.parts[] | select(.inlineData and (.thought | not)) | .inlineData.data' |
  base64 -d >"$out"
