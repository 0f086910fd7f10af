"""Python standard library benchmark client (urllib + json + base64).

    python3 py_generate.py BASE_URL MODEL PROMPT OUT

Prints "elapsed=<s>" on success.
"""
import base64
import json
import sys
import time
import urllib.request


def main():
    base_url, model, prompt, out = sys.argv[1:5]
    t0 = time.perf_counter()
    body = json.dumps({"contents": [{"role": "user",
                                     "parts": [{"text": prompt}]}]}).encode()
    req = urllib.request.Request(
        "%s/v1beta/models/%s:generateContent" % (base_url, model), data=body,
        headers={"Content-Type": "application/json",
                 "x-goog-api-key": "test-key"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        doc = json.loads(resp.read())
    b64 = None
    for part in doc["candidates"][0]["content"]["parts"]:
        if "inlineData" in part and not part.get("thought"):
            b64 = part["inlineData"]["data"]
    if b64 is None:
        sys.exit("no image in the response")
    with open(out, "wb") as f:
        f.write(base64.b64decode(b64))
    print("elapsed=%.6f" % (time.perf_counter() - t0))


if __name__ == "__main__":
    main()
