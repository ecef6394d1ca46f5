"""The database's own ceiling: the service's join and preview SQL under pgbench.

Usage: ``.venv/bin/python bench/db_ceiling.py [--seconds 20] [--clients 8]``.

No Python in the request path: pgbench (shipped with pgserver) runs the
repository's own statements (app/repository/*.py), as the service sends them,
against a throwaway embedded PostgreSQL, or BENCH_DATABASE_URL:

- join: the one statement of a join, in autocommit as the service sends it
  (the new user's row, the conditional UPDATE that takes a use, the
  membership INSERT and the group summary), over 2,000 invites of 100 uses
  each;
- preview: the one SELECT of GET /invites/{code}, over the same invites.

It prints transactions per second for each. These are the ceilings the
scaling plan (docs/scaling.md) starts from: what one primary does with
nothing else in the way, on this machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from app.code_keys import CodeKeyring, new_key_spec
from app.codes import generate_code
from app.db import create_engine
from app.migrate import upgrade
from app.repository import invites

INVITES = 2000
# The code's digests, as the service passes them (one key configured).
DIGESTS = "ARRAY[CAST(:digest AS bytea)]"


def _pgbench_sql(statement, **literals: str) -> str:
    """A repository statement for pgbench: one line, binds as pgbench variables."""
    text = statement.text
    for name, literal in literals.items():
        text = text.replace(f":{name}", literal)
    # CAST(:x AS t) is kept; pgbench sends :x as a parameter (-M prepared).
    return " ".join(text.split())


def scripts(workdir: Path) -> dict[str, Path]:
    pick = (
        f"\\set n random(1, {INVITES})\n"
        "SELECT digest, CAST(gen_random_uuid() AS text) AS user_id"
        " FROM bench_codes WHERE n = :n \\gset\n"
    )
    join = pick + _pgbench_sql(invites._REDEEM, digests=DIGESTS, display_name="NULL") + ";\n"
    preview = pick + _pgbench_sql(invites._PREVIEW, digests=DIGESTS) + ";\n"
    paths = {}
    for name, text in (("join", join), ("preview", preview)):
        paths[name] = workdir / f"{name}.sql"
        paths[name].write_text(text)
    return paths


def seed(engine) -> None:
    import sqlalchemy as sa

    keys = CodeKeyring.parse(new_key_spec("bench"))

    with engine.begin() as conn:
        owner = conn.execute(
            sa.text(
                "INSERT INTO users (id, display_name)"
                " VALUES (gen_random_uuid(), 'Bench') RETURNING id"
            )
        ).scalar_one()
        conn.execute(sa.text("DROP TABLE IF EXISTS bench_codes"))
        conn.execute(sa.text("CREATE TABLE bench_codes (n int PRIMARY KEY, digest bytea NOT NULL)"))
        for n in range(1, INVITES + 1):
            group = conn.execute(
                sa.text("INSERT INTO groups (name, created_by) VALUES ('Bench', :o) RETURNING id"),
                {"o": owner},
            ).scalar_one()
            conn.execute(
                sa.text(
                    "INSERT INTO group_memberships (group_id, user_id, role)"
                    " VALUES (:g, :o, 'owner')"
                ),
                {"g": group, "o": owner},
            )
            code = generate_code()
            key_id, sealed = keys.seal_code(code, group)
            conn.execute(
                sa.text(
                    "INSERT INTO group_invites (group_id, code_digest, code_sealed, code_key,"
                    " max_uses, expires_at, created_by)"
                    " VALUES (:g, :d, :s, :k, 100, now() + interval '1 day', :o)"
                ),
                {"g": group, "d": keys.digest(code), "s": sealed, "k": key_id, "o": owner},
            )
            conn.execute(
                sa.text("INSERT INTO bench_codes VALUES (:n, :d)"),
                {"n": n, "d": keys.digest(code)},
            )


def pgbench(binary: Path, url: str, script: Path, seconds: int, clients: int) -> float:
    result = subprocess.run(
        [
            str(binary),
            "-n",
            "-M",
            "prepared",
            "-f",
            str(script),
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"tps = ([0-9.]+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if result.returncode != 0 or not found or (failed and int(failed.group(1))):
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"pgbench failed on {script.name}")
    return float(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)

    from app.local import pgserver_binary

    binary = pgserver_binary("pgbench")
    workdir = Path(tempfile.mkdtemp(prefix="invites-ceiling-"))
    workdir.chmod(0o755)
    server = None
    try:
        url = os.environ.get("BENCH_DATABASE_URL", "").strip()
        if not url:
            from app.local import start_embedded_postgres

            server = start_embedded_postgres(workdir / "pg", cleanup_mode="stop")
            url = server.get_uri()
        engine = create_engine(url, pool_size=1)
        upgrade(engine)
        seed(engine)
        engine.dispose()
        libpq_url = url.replace("postgresql+psycopg2://", "postgresql://")
        paths = scripts(workdir)
        rates = {
            name: pgbench(binary, libpq_url, path, args.seconds, args.clients)
            for name, path in paths.items()
        }
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\npgbench, {args.clients} clients, {args.seconds} s each, prepared statements; "
        f"{os.cpu_count()} CPUs shared by PostgreSQL and pgbench.\n"
    )
    print("| transaction | per second |\n|---|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
