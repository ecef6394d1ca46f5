"""Clients from four generators, each with its default settings, against the served document.

- openapi-typescript (types) with openapi-fetch, @hey-api/openapi-ts (its fetch
  client) and openapi-generator's typescript-fetch: generated without a
  warning, compiled with tsc strict (sdk/tsconfig.*.json), then driven through
  one flow (sdk/src/harness.ts) against gunicorn on PostgreSQL, every response
  body validated with Ajv (strict) against the schema the document declares
  for its status.
- openapi-generator's kotlin and swift5 (and swift6, its successor):
  generated without a warning.
- openapi-python-client is tests/test_sdk.py.

`make test-sdk` installs sdk/'s npm packages (npm ci) first; Node 20 and Java 17
must be on the PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.helpers import JWT_SECRET, make_token, serving

pytestmark = pytest.mark.sdk

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk"
NODE_BIN = SDK / "node_modules" / ".bin"
OPENAPI_GENERATOR = Path(sys.executable).parent / "openapi-generator-cli"

# swagger-parser, which openapi-generator parses with, reads a link's
# requestBody as a string only; OpenAPI 3.0 allows any value, and the
# createInvite -> joinGroup link's is the object `{"code": ...}` (Schemathesis
# follows it to join with a real code). This one finding is expected of its
# validation, which is then skipped (--skip-validate-spec, the one non-default
# flag) so that generation can run; anything else it finds fails the test.
PARSER_FINDING = (
    "attribute paths.'/api/v1/groups/{group_id}/invites'(post).responses.201.links"
    ".joinGroup.requestBody is not of type `string`"
)
SKIPPED_VALIDATION = (
    "[main] WARN  o.o.c.config.CodegenConfigurator - There were issues with the specification, "
    "but validation has been explicitly disabled.",
    "Errors:",
    f"-{PARSER_FINDING}",
)
# swift5 itself is deprecated in openapi-generator 7.x, and says so.
DEPRECATED = {
    "swift5": (
        "[main] WARN  o.o.codegen.DefaultGenerator - Generator 'swift5' is considered deprecated.",
        "[main] WARN  o.o.c.languages.Swift5ClientCodegen - IMPORTANT: This generator has been "
        "deprecated. Please use `swift6` instead",
    )
}
# What the flow reaches: each (operationId, status) at least once.
REACHED = {
    "createGroup 201",
    "getGroup 200",
    "getGroup 404",
    "createInvite 201",
    "createInvite 400",
    "createInvite 403",
    "listInvites 200",
    "getInvite 200",
    "revokeInvite 204",
    "listInviteRedemptions 200",
    "getInvitePreview 200",
    "getInvitePreview 400",
    "getInvitePreview 404",
    "joinGroup 200",
    "joinGroup 409",
    "joinGroup 410",
}


def _run(
    command: list, cwd: Path, timeout: float = 300, *, stderr_only: bool = False, **env: str
) -> str:
    """Run ``command``; its output (stdout and stderr, or stderr only) if it succeeded,
    else fail with it."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command[0]} failed:\n{output}"
    return result.stderr if stderr_only else output


def _warnings(output: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """openapi-generator's output but for INFO lines, its banner (``#``) and ``allowed``."""
    lines = [line.strip() for line in output.splitlines()]
    return [
        line
        for line in lines
        if line and not line.startswith(("[main] INFO ", "#")) and line not in allowed
    ]


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn-generated-clients") / "server.log"
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "APP_BASE_URL": "https://invites.example",
        "INVITE_LOOKUP_RATE_LIMIT": "100000/minute",
        "JOIN_RATE_LIMIT": "100000/minute",
        "CREATE_RATE_LIMIT": "100000/minute",
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    with serving(settings, log_path, workers=1) as srv:
        yield srv
    assert "Traceback" not in log_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def document(server, tmp_path_factory) -> Path:
    """The served document, as a file for the generators."""
    assert (NODE_BIN / "tsc").exists(), "sdk/node_modules is missing: `make test-sdk` (npm ci)"
    reply = server.call("GET", "/openapi.json")
    assert reply.status == 200
    path = tmp_path_factory.mktemp("document") / "openapi.json"
    path.write_text(json.dumps(reply.body), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def parsed_by_openapi_generator(document) -> Path:
    """The document, once openapi-generator's validation found nothing but PARSER_FINDING."""
    report = subprocess.run(
        [str(OPENAPI_GENERATOR), "validate", "-i", str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Its report, with the line wrapping undone.
    said = " ".join((report.stdout + report.stderr).split())
    expected = f"Errors: - {PARSER_FINDING} [error] Spec has 1 errors."
    assert said == f"Validating spec ({document}) {expected}", report.stdout + report.stderr
    return document


@pytest.fixture
def project(tmp_path) -> Path:
    """A scratch copy of sdk/ (its packages linked) to generate and compile in."""
    for name in ("src", *(p.name for p in SDK.glob("tsconfig*.json"))):
        source = SDK / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / "node_modules").symlink_to(SDK / "node_modules")
    return tmp_path


def openapi_generator(document: Path, generator: str, out: Path, cwd: Path) -> str:
    """Generate with openapi-generator (its validation skipped: see PARSER_FINDING); its output."""
    command = [OPENAPI_GENERATOR, "generate", "-i", document, "-g", generator, "-o", out]
    return _run([*command, "--skip-validate-spec"], cwd)


def generate(client: str, document: Path, project: Path) -> None:
    """Generate ``client`` into project/generated with the generator's defaults; no warnings."""
    out = project / "generated"
    if client == "typescript-fetch":
        output = openapi_generator(document, "typescript-fetch", out / client, project)
        assert not _warnings(output, SKIPPED_VALIDATION), output
        return
    if client == "openapi-fetch":
        command = [NODE_BIN / "openapi-typescript", document, "-o", out / "openapi-typescript.ts"]
    else:
        command = [NODE_BIN / "openapi-ts", "-i", document, "-o", out / client]
    # Both warn with console.warn, so a clean run writes nothing to stderr.
    assert _run(command, project, stderr_only=True) == ""


@pytest.mark.parametrize("client", ["openapi-fetch", "hey-api", "typescript-fetch"])
def test_a_typescript_client_compiles_strict_and_runs_the_flow(
    client, server, document, parsed_by_openapi_generator, project
):
    generate(client, document, project)
    configs = [f"tsconfig.{client}.json"]
    if client == "hey-api":
        configs.append("tsconfig.hey-api-types.json")
    for config in configs:
        output = _run([NODE_BIN / "tsc", "-p", config], project)
        assert output == "", output

    users = {
        role: {"id": str(user_id), "token": make_token(str(user_id), **claims)}
        for role, claims in {
            "owner": {"name": "Olivia Owner"},
            "joiner": {"name": "Jules Joiner"},
            # Longer than the service keeps: the flow sees it cut to the documented maxLength.
            "second": {"name": "Sam Second " + "s" * 139},
            "outsider": {},
        }.items()
        for user_id in [uuid.uuid4()]
    }
    config = {"base_url": f"http://127.0.0.1:{server.port}", "users": users}
    output = _run(
        ["node", project / "dist" / "src" / f"{client}.js"],
        project,
        timeout=120,
        FLOW_CONFIG=json.dumps(config),
    )
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["client"] == client
    assert set(summary["seen"]) >= REACHED, sorted(REACHED - set(summary["seen"]))


@pytest.mark.parametrize(
    ("generator", "model"),
    [
        ("kotlin", "src/main/kotlin/org/openapitools/client/models/ApiError.kt"),
        ("swift5", "OpenAPIClient/Classes/OpenAPIs/Models/ApiError.swift"),
        ("swift6", "Sources/OpenAPIClient/Models/ApiError.swift"),
    ],
)
def test_kotlin_and_swift_clients_generate_without_warnings(
    generator, model, parsed_by_openapi_generator, tmp_path
):
    out = tmp_path / generator
    output = openapi_generator(parsed_by_openapi_generator, generator, out, tmp_path)
    assert not _warnings(output, SKIPPED_VALIDATION + DEPRECATED.get(generator, ())), output
    # The envelope is ApiError, not a second Error beside the language's own.
    assert (out / model).exists()
