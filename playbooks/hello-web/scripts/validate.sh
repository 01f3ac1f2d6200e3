#!/bin/sh
# ValidateService: the site must answer on its port within 20 seconds.
set -eu
. "$(dirname "$0")/common.sh"
url="http://$(cat "$RUN_DIR/address")/index.html"
python3 - "$url" <<'PY'
import sys, time, urllib.request
url, deadline = sys.argv[1], time.monotonic() + 20
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            body = response.read().decode()
        if "hello-web" in body:
            print(f"{url} answers")
            sys.exit(0)
        sys.exit(f"{url} answered without hello-web in the page")
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"{url} does not answer: {exc}")
        time.sleep(0.2)
PY
