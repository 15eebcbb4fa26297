#!/usr/bin/env python3
"""Times the database side of the console's two slow pages (issue 22), old statement against
new, interleaved, on a throwaway PostgreSQL database:

- the customers list: every customer (the old page) against one keyset page of 101;
- the deck diff of two 100,000-row versions (every row changed, as in
  tests/integration/console/timing.rs) after 3M rows of older versions: the statement before
  issue 22 (kept in tests/integration/deck_diff/mod.rs as the reference) against the page
  statement of issue 22's first change (with its `SET LOCAL jit = off`), assembled here from
  tests/integration/deck_diff/sql_before.rs's constants so it cannot drift. Today's diff is no
  SQL statement (a streaming join in the daemon): `cargo test --release -p warpd --test
  integration deck_diff::first_diff -- --nocapture` times it against that statement.

Usage: scripts/bench-console-sql.py PSQL_ARGS... (e.g. -h 127.0.0.1 -p 55432 -U postgres)
       ROUNDS=5 by default. Needs psql; creates and drops database `warpd_bench_console`.
Each figure is psql's \\timing of the statement (server + transfer), one line per round.
"""
import os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGS = sys.argv[1:]
DB = "warpd_bench_console"
ROUNDS = int(os.environ.get("ROUNDS", "5"))


def psql(sql, db=DB, quiet=True):
    cmd = ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", db] + ARGS
    if quiet:
        cmd.append("-q")
    return subprocess.run(cmd, input=sql, capture_output=True, text=True, check=True).stdout


def rust_str(src, name):
    m = re.search(r"const " + name + r": &str = \"(.*?)\";\n", src, re.S)
    s = m.group(1).replace("\\\n", "").replace('\\"', '"')
    return re.sub(r"\s+", " ", s)


def new_diff_sql():
    src = open(os.path.join(ROOT, "tests/integration/deck_diff/sql_before.rs")).read()
    rows, pct, over = (rust_str(src, n) for n in ("DIFF_ROWS", "PCT", "OVER"))
    body = re.search(r'format!\(\s*"WITH \{DIFF_ROWS\}(.*?)"\s*\)', src, re.S).group(1)
    body = body.replace("\\\n", "").replace('\\"', '"')
    body = re.sub(r"\s+", " ", body)
    pct_col = "NULL::float8"
    sql = ("WITH " + rows + body).replace("{pct_col}", pct_col)
    sql = sql.replace("{filter}", "(ck IS NULL OR k > ck)").replace("{order}", "k")
    return sql.replace("{OVER}", over).replace("{PCT}", pct)


def old_diff_sql():
    src = open(os.path.join(ROOT, "tests/integration/deck_diff/mod.rs")).read()
    return rust_str(src, "REFERENCE")


def customers_sql(page):
    src = open(os.path.join(ROOT, "src/admin/resources/customers.rs")).read()
    view = rust_str(src, "CUSTOMER_VIEW")
    tail = " WHERE $1::text IS NULL OR c.ban > $1 ORDER BY c.ban LIMIT $2" if page else " ORDER BY c.ban"
    return f"SELECT coalesce(jsonb_agg(to_jsonb(t)), '[]'::jsonb) FROM ({view}{tail}) t"


def timed(name, sql, params, setup=""):
    # a prepared statement with the parameters, as the driver sends them
    types = ",".join(t for t, _ in params)
    vals = ",".join(v for _, v in params)
    prep = f"PREPARE q({types}) AS {sql};\n" if params else f"PREPARE q AS {sql};\n"
    run = f"EXECUTE q({vals});" if params else "EXECUTE q;"
    out = psql(setup + prep + "\\timing on\n" + run + "\n", quiet=True)
    ms = float(re.findall(r"Time: ([0-9.]+) ms", out)[-1])
    return ms


def main():
    psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
    psql(f"CREATE DATABASE {DB}", db="postgres")
    for f in sorted(os.listdir(os.path.join(ROOT, "sql"))):
        if f.endswith(".sql"):
            psql(open(os.path.join(ROOT, "sql", f)).read())
    psql("""
      INSERT INTO customers (ban, name) SELECT 'bulk' || g, 'Bulk customer ' || g FROM generate_series(1, 2000) g;
      INSERT INTO deck_rates (version_id, prefix, rate_inter, rate_intra, rate_local, min_seconds, inc_seconds, effective_from, effective_until)
        SELECT v, '1' || (2000000 + g)::text, 0.01, 0.01, 0.01, 6, 6, '-infinity', 'infinity' FROM generate_series(1, 3) v, generate_series(1, 1000000) g;
      INSERT INTO deck_rates (version_id, prefix, rate_inter, rate_intra, rate_local, min_seconds, inc_seconds, effective_from, effective_until)
        SELECT 10, '44' || (100000 + g)::text, 0.03, 0.03, 0.03, 6, 6, '-infinity', 'infinity' FROM generate_series(0, 99999) g;
      INSERT INTO deck_rates (version_id, prefix, rate_inter, rate_intra, rate_local, min_seconds, inc_seconds, effective_from, effective_until)
        SELECT 11, '44' || (100000 + g)::text, 0.025, 0.025, 0.025, 6, 6, '-infinity', 'infinity' FROM generate_series(0, 99999) g;
      VACUUM ANALYZE;
    """)
    cases = [
        ("customers: all (old page)", customers_sql(False), []),
        ("customers: one page of 101", customers_sql(True), [("text", "NULL"), ("int8", "101")]),
        ("diff: old statement (limit 1000)", old_diff_sql(),
         [("int8", "10"), ("int8", "11"), ("float8", "25"), ("int8", "1000")]),
        ("diff: first-change statement (page of 100)", new_diff_sql(),
         [("int8", "10"), ("int8", "11"), ("float8", "25"), ("int8", "100"), ("text", "NULL"),
          ("text", "NULL"), ("float8", "NULL"), ("bool", "false")], "SET jit = off;\n"),
    ]
    results = {c[0]: [] for c in cases}
    for r in range(ROUNDS):
        for c in cases:
            results[c[0]].append(timed(*c))
    load = open("/proc/loadavg").read().split()[:3]
    print(f"load average {' '.join(load)}; {ROUNDS} rounds, interleaved; ms per statement")
    for name, ms in results.items():
        s = sorted(ms)
        print(f"{name:<36} median {s[len(s)//2]:8.1f}  min {s[0]:8.1f}  max {s[-1]:8.1f}")
    psql(f"DROP DATABASE {DB}", db="postgres")


main()
