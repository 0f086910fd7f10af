#!/bin/sh
# curl benchmark client: the same upload as one POST of the whole file
# (resumable start, then "upload, finalize" of every byte, streamed by -T).
#   sh curl_upload.sh BASE_URL FILE
# Prints "sha256Hash=<base64>".
set -e
base=$1 file=$2
size=$(stat -c %s "$file")
url=$(curl -sS -D - -o /dev/null -X POST -H 'Authorization: Bearer test-key' \
  -H 'X-Goog-Upload-Protocol: resumable' -H 'X-Goog-Upload-Command: start' \
  -H "X-Goog-Upload-Header-Content-Length: $size" \
  -H 'X-Goog-Upload-Header-Content-Type: application/octet-stream' \
  -H 'Content-Type: application/json' --data '{"file":{}}' "$base/upload/v1beta/files" |
  tr -d '\r' | sed -n 's/^[Xx]-[Gg]oog-[Uu]pload-[Uu][Rr][Ll]: //p')
curl -sS -X POST -T "$file" -H 'Expect:' -H 'Authorization: Bearer test-key' \
  -H 'X-Goog-Upload-Command: upload, finalize' -H 'X-Goog-Upload-Offset: 0' "$url" |
  sed -n 's/.*"sha256Hash": *"\([^"]*\)".*/sha256Hash=\1/p'
