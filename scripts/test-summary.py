#!/usr/bin/env python3
"""Count test cases from meson testlog.json files and print
'N passed, N failed, N skipped'. cmocka binaries count per case (their
[ OK ]/[ FAILED ]/[ SKIPPED ] lines); other tests count as one. A binary
that failed without a failing case line (crash, timeout) adds a failure. A
missing log (the build failed) counts as one failure. Logs named in the
environment variable MQ_EXTRA_TESTLOGS (space-separated) are counted too:
.ci/run passes the container lane's (scripts/container-test.sh) this way."""
import json
import os
import re
import sys

OK = re.compile(r"^\[\s+OK\s+\]", re.M)
FAILED = re.compile(r"^\[\s+FAILED\s+\] (?!\d+ test)", re.M)
SKIPPED = re.compile(r"^\[\s+SKIPPED\s+\] (?!\d+ test)", re.M)

passed = failed = skipped = 0
for path in sys.argv[1:] + os.environ.get("MQ_EXTRA_TESTLOGS", "").split():
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError:
        failed += 1
        continue
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        out = t.get("stdout") or ""
        ok, bad, skip = len(OK.findall(out)), len(FAILED.findall(out)), len(SKIPPED.findall(out))
        res = t.get("result")
        if ok or bad or skip:
            passed += ok
            failed += bad
            skipped += skip
            if res in ("FAIL", "ERROR", "TIMEOUT", "UNEXPECTEDPASS") and bad == 0:
                failed += 1
        elif res in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif res == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
