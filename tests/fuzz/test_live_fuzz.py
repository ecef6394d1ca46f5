"""Schemathesis against gunicorn on real PostgreSQL (`make fuzz`).

The fuzzer reads the served /openapi.json and runs every phase: the
document's examples, the coverage phase (boundaries and every way to be
invalid), random positive and negative data, and stateful sequences that
follow the document's links (create a group, then an invite in it, then read,
preview, join and revoke it). Every check is on: no 5xx, only documented
statuses, the documented content type, headers and body schema, plus
tests/fuzz/hooks.py's own: every error is the contract's envelope with a code
the document lists for that status.

The run is bounded by FUZZ_SECONDS (default 120). Rate limits are raised out
of reach, because a 429 halfway through would hide everything behind it; the
SDK test covers 429.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app import liveserver
from tests.helpers import JWT_SECRET, serving

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SECONDS = int(os.environ.get("FUZZ_SECONDS", "120"))


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn-fuzz") / "server.log"
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "APP_BASE_URL": "https://invites.example",
        "INVITE_LOOKUP_RATE_LIMIT": "1000000/minute",
        "JOIN_RATE_LIMIT": "1000000/minute",
        "CREATE_RATE_LIMIT": "1000000/minute",
    }
    with serving(settings, log_path, workers=2) as srv:
        yield srv


def test_schemathesis_finds_nothing(server, tmp_path):
    stats_path = tmp_path / "stats.json"
    env = {
        **os.environ,
        "FUZZ_JWT_SECRET": JWT_SECRET,
        "FUZZ_OWNER_ID": str(uuid.uuid4()),
        "FUZZ_STATS_PATH": str(stats_path),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"http://{liveserver.HOST}:{server.port}/openapi.json",
        "--max-time",
        str(SECONDS),
        "--generation-database",
        "none",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path / "report"),
        "--no-color",
    ]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=SECONDS * 3 + 300
    )
    print(result.stdout[-20000:])
    print(result.stderr[-5000:], file=sys.stderr)

    counts = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    total = sum(counts.values())
    by_status: dict[str, int] = {}
    for key, n in counts.items():
        status = key.rsplit(" ", 1)[1]
        by_status[status] = by_status.get(status, 0) + n
    print(f"\n{total} requests; by status: {dict(sorted(by_status.items()))}")
    print(json.dumps(counts, indent=1))

    assert result.returncode == 0, "schemathesis found failures (its report is above)"
    # The run reached real data, not just the validation layer: each of these
    # needs a group or an invite that an earlier call created.
    for reached in (
        "createGroup 201",
        "getGroup 200",
        "createInvite 201",
        "getInvite 200",
        "listInvites 200",
        "listInviteRedemptions 200",
        "getInvitePreview 200",
        "joinGroup 200",
        "revokeInvite 204",
    ):
        assert counts.get(reached), f"the run never got `{reached}`"
    assert not any(key.endswith(" 500") for key in counts)

    log = server.log()
    assert "Traceback" not in log
    assert not re.search(r"\bERROR\b", log), "the server logged errors during the run"
