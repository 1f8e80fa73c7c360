#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""mqbench smoke test: every scenario of issue 6 and the legacy ones run
against a real mqd (started by mqbench) with tiny counts; checks the exit
code and that the JSON file has the fields docs/benchmarks.md documents.
No rate is asserted (benchmarks are never timed tests). Needs no peer.

With --postgres (run under tests/pg.sh run, which exports MQ_TEST_PG): one
tiny pass of mq on PostgreSQL instead, scenario 3 with 1 and 2 mqd on that
cluster beside pgdirect, then a short soak on a cluster mqbench starts
itself (tests/pg.sh through MQ_TEST_PGSH), and the option checks.

usage: smoke.py MQBENCH MQD [--postgres]
"""
import json
import os
import subprocess
import sys
import tempfile

RESULT_FIELDS = ["system", "mode", "label", "scenario", "name", "title", "ok", "producers",
                 "consumers", "inflight", "batch", "size", "seconds", "rate", "pushed",
                 "acked", "errors", "durability", "latency_ms", "server_cpu_s",
                 "server_cpu_pct", "prefill"]
TOP_FIELDS = ["tool", "command", "date", "host", "load_start", "load_end", "size", "results"]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(mqbench, mqd, args, out, timeout=60):
    cmd = [mqbench, "--mqd", mqd, "--json", out] + args
    print("+", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    print(p.stdout)
    check(p.returncode == 0, "%s: exit code %d" % (" ".join(args), p.returncode))
    try:
        with open(out) as f:
            return json.load(f), p.stdout
    except (OSError, ValueError) as e:
        check(False, "%s: JSON: %s" % (" ".join(args), e))
        return None, p.stdout


def check_doc(doc, args, want):
    if doc is None:
        return
    for k in TOP_FIELDS:
        check(k in doc, "%s: top-level field %s" % (args, k))
    res = doc.get("results", [])
    limit = [r for r in res if r.get("system") == "limit"]
    res = [r for r in res if r.get("system") != "limit"]
    if "1" in want:  # scenario 1 brings the stack's own limit along
        check(len(limit) == 1 and limit[0].get("ok") and limit[0].get("pushed", 0) > 0,
              "%s: the stack limit ran" % args)
    check([r.get("scenario") for r in res] == want,
          "%s: scenarios %s, want %s" % (args, [r.get("scenario") for r in res], want))
    for r in res:
        tag = "%s: scenario %s" % (args, r.get("scenario"))
        for k in RESULT_FIELDS:
            check(k in r, "%s: field %s" % (tag, k))
        check(r.get("ok") is True, "%s: ok (%s)" % (tag, r.get("skipped")))
        check(r.get("system") == "mq", "%s: system mq" % tag)
        check(r.get("errors") == 0, "%s: no errors (%s)" % (tag, r.get("first_error")))
        check(r.get("durability", "").startswith("durable"), "%s: durability" % tag)
        check(isinstance(r.get("server_cpu_s"), (int, float)), "%s: server CPU" % tag)
        lat = r.get("latency_ms", {})
        for call in ("push", "pull", "ack"):
            check(set(lat.get(call, {})) >= {"p50", "p99", "p999", "n"},
                  "%s: latency of %s" % (tag, call))
        if r.get("scenario") == "consume":
            check(r.get("acked") == 300, "%s: acked all 300" % tag)
            continue
        if r.get("consumers", 0) > 0:
            check(r.get("acked", 0) > 0, "%s: something acked" % tag)
            check(lat["pull"]["n"] > 0 and lat["ack"]["n"] > 0, "%s: pull/ack samples" % tag)
        else:
            check(r.get("pushed", 0) > 0, "%s: something pushed" % tag)
        check(lat["push"]["n"] > 0, "%s: push samples" % tag)
        if r.get("scenario") == "2h":
            check(r.get("rate_target", 0) > 0, "%s: paced" % tag)
        if r.get("scenario") == "5":
            check(r.get("prefill") == 2000, "%s: prefill 2000" % tag)
            check(r.get("disk_bytes", 0) > 0 and r.get("disk_bytes_per_message", 0) > 0,
                  "%s: disk bytes" % tag)


def psql(conninfo, sql):
    bindir = os.environ.get("MQ_PG_BINDIR", "/usr/lib/postgresql/15/bin")
    p = subprocess.run([os.path.join(bindir, "psql"), "-XAtq", "-d", conninfo, "-c", sql],
                       stdout=subprocess.PIPE, text=True, timeout=30)
    check(p.returncode == 0, "psql %s: exit code %d" % (sql, p.returncode))
    return p.stdout.strip()


def check_pg(doc, args, want):
    """want: [(system, scenario, instances)] in order."""
    if doc is None:
        return []
    res = doc.get("results", [])
    got = [(r.get("system"), r.get("scenario"), r.get("instances")) for r in res]
    check(got == want, "%s: runs %s, want %s" % (args, got, want))
    for r in res:
        tag = "%s: %s %s x%s" % (args, r.get("system"), r.get("scenario"), r.get("instances"))
        for k in RESULT_FIELDS + ["storage", "instances", "pg_cpu_s", "pg_cpu_pct",
                                  "pg_commits", "pg_wal_syncs"]:
            check(k in r, "%s: field %s" % (tag, k))
        # Read, not null (the counts lag by up to a second: 0 is possible
        # in a 0.3 s window).
        check(isinstance(r.get("pg_commits"), int) and isinstance(r.get("pg_wal_syncs"), int),
              "%s: PostgreSQL's commits read (%s)" % (tag, r.get("pg_commits")))
        check(r.get("ok") is True, "%s: ok (%s)" % (tag, r.get("skipped")))
        check(r.get("storage") == "postgres", "%s: storage %s" % (tag, r.get("storage")))
        check(r.get("errors") == 0, "%s: no errors (%s)" % (tag, r.get("first_error")))
        check(r.get("acked", 0) > 0, "%s: something acked" % tag)
        lat = r.get("latency_ms", {})
        for call in ("push", "pull", "ack"):
            check(lat.get(call, {}).get("n", 0) > 0, "%s: %s samples" % (tag, call))
        if r.get("system") == "mq":
            check(isinstance(r.get("server_cpu_s"), (int, float)), "%s: mqd CPU" % tag)
            check(("%d mqd on PostgreSQL" % r.get("instances")) in r.get("note", ""),
                  "%s: note %r" % (tag, r.get("note")))
        check(r.get("durability", "").startswith(
            "durable: reply after COMMIT" if r.get("system") == "mq" else "reply after COMMIT"),
            "%s: durability %r" % (tag, r.get("durability")))
    return res


def main_postgres(mqbench, mqd):
    conninfo = os.environ.get("MQ_TEST_PG")
    if not conninfo:
        print("MQ_TEST_PG is not set: run under tests/pg.sh run")
        return 1
    quick = ["--seconds", "0.3", "--warmup", "0.1"]
    with tempfile.TemporaryDirectory(prefix="mqbench-smoke.") as tmp:
        # mqbench's own cluster lands in $TMPDIR and runs as nobody when we
        # are root: the dir must be traversable.
        os.chmod(tmp, 0o711)
        env_tmp = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = tmp
        out = os.path.join(tmp, "out.json")
        args = ["--storage", "postgres", "--pg", conninfo, "--scenario", "3,pgdirect",
                "--instances", "1,2"]
        doc, text = run(mqbench, mqd, args + quick, out)
        check_pg(doc, "pg 3,pgdirect", [("mq", "3", 1), ("mq", "3", 2),
                                        ("pgdirect", "pgdirect", 0)])
        check("== PostgreSQL, scenario 3" in text and "| mq postgres, 2 mqd |" in text
              and "| pgdirect (libpq, SKIP LOCKED) |" in text, "pg: the comparison table")
        check("2 mqd not slower than 1" in text, "pg: the goals")
        # The schemas mqbench named itself are dropped after each run.
        left = psql(conninfo, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mqbench%'")
        check(left == "0", "pg: schemas left behind: %s" % left)
        # A named schema is used as is and kept.
        doc, _ = run(mqbench, mqd, ["--storage", "postgres", "--pg", conninfo, "--pg-schema",
                                     "smoke_named", "--scenario", "cycle", "--producers", "1",
                                     "--inflight", "2"] + quick, out)
        check_pg(doc, "pg cycle", [("mq", "cycle", 1)])
        n = psql(conninfo, "SELECT count(*) FROM pg_tables WHERE schemaname = 'smoke_named'")
        check(n not in ("", "0"), "pg: --pg-schema smoke_named has tables (%s)" % n)
        # The soak, on a cluster mqbench starts (and removes) itself.
        doc, text = run(mqbench, mqd, ["--storage", "postgres", "--scenario", "soak",
                                        "--seconds", "1.5", "--warmup", "0.1",
                                        "--soak-interval", "0.5"], out, timeout=120)
        res = check_pg(doc, "soak", [("mq", "soak", 1)])
        if res:
            soak = res[0].get("soak", [])
            check(len(soak) >= 3, "soak: %d samples, want >= 3" % len(soak))
            check(all(s.get("tables", 0) > 0 and s.get("total_bytes", 0) > 0 for s in soak),
                  "soak: every sample has tables with bytes")
            check(soak and soak[-1].get("acked", 0) > 0, "soak: cycles counted")
            check(len(res[0].get("soak_tables", [])) > 0, "soak: per-table figures")
            check(isinstance(res[0].get("pg_cpu_s"), (int, float)),
                  "soak: PostgreSQL CPU of mqbench's own cluster")
        check("soak t=" in text and "most dead tuples" in text, "soak: the printed samples")
        # Options that need --storage postgres, and its exclusions.
        for bad in (["--scenario", "pgdirect"], ["--scenario", "3", "--instances", "2"],
                    ["--storage", "postgres", "--compare"], ["--storage", "nope"]):
            p = subprocess.run([mqbench, "--mqd", mqd] + bad, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            check(p.returncode == 2, "%s: exit code %d, want 2" % (bad, p.returncode))
        left = [n for n in os.listdir(tmp) if n.startswith("mqbench-")]
        check(left == [], "server and cluster dirs removed, found %s" % left)
        if env_tmp is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = env_tmp
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


def main():
    mqbench, mqd = sys.argv[1], sys.argv[2]
    if sys.argv[3:] == ["--postgres"]:
        return main_postgres(mqbench, mqd)
    quick = ["--seconds", "0.3", "--warmup", "0.1"]
    with tempfile.TemporaryDirectory(prefix="mqbench-smoke.") as tmp:
        env_tmp = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = tmp  # mqbench's server dirs land here
        out = os.path.join(tmp, "out.json")
        doc, text = run(mqbench, mqd, ["--scenario", "all", "--prefill", "2000"] + quick, out)
        check_doc(doc, "all", ["1", "2a", "2b", "2h", "3", "4", "5"])
        # The plot script draws that file: a well-formed SVG with bars.
        plot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                            "bench-plot.py")
        svg = os.path.join(tmp, "out.svg")
        p = subprocess.run([sys.executable, plot, out, svg])
        check(p.returncode == 0, "bench-plot.py: exit code %d" % p.returncode)
        try:
            import xml.dom.minidom
            bars = xml.dom.minidom.parse(svg).getElementsByTagName("rect")
            check(len(bars) > 7, "bench-plot.py: %d rects" % len(bars))
        except Exception as e:  # noqa: BLE001 (any parse failure fails the check)
            check(False, "bench-plot.py: SVG: %s" % e)
        for legacy in (["--scenario", "push", "--inflight", "4"],
                       ["--scenario", "cycle", "--producers", "2", "--inflight", "2"],
                       ["--scenario", "push", "--batch", "10", "--async", "--inflight", "2"]):
            doc, _ = run(mqbench, mqd, legacy + quick, out)
            check_doc(doc, legacy[1], [legacy[1]])
        doc, _ = run(mqbench, mqd, ["--scenario", "consume", "--max-messages", "300",
                                     "--seconds", "20"], out)
        check_doc(doc, "consume", ["consume"])
        # A peer that is asked for explicitly and cannot run fails the run,
        # and a bad option is a usage error.
        p = subprocess.run([mqbench, "--scenario", "9"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        check(p.returncode == 2, "unknown scenario: exit code %d, want 2" % p.returncode)
        left = [n for n in os.listdir(tmp) if n.startswith("mqbench-")]
        check(left == [], "server dirs removed, found %s" % left)
        if env_tmp is None:
            del os.environ["TMPDIR"]
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
