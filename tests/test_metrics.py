"""``/metrics``: exact counts across the workers of a real gunicorn, the join
outcomes, the histogram, the pool; and who may read it."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.api.metrics import route_template
from tests.helpers import JWT_SECRET, fire_together, make_token, serving

WORKERS = 4
PREVIEWS = 60
ADMITTED = 40


def samples(text: str) -> dict[tuple, float]:
    """Every sample as (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.slow
def test_counts_are_exact_across_four_workers(database_url, engine, tmp_path):
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "INVITE_LOOKUP_RATE_LIMIT": f"{ADMITTED}/minute",
    }
    with serving(settings, tmp_path / "server.log", workers=WORKERS) as server:
        # Sent together, on their own connections: spread over the workers.
        calls = [("GET", "/api/v1/invites/ZZZ-ZZZ-ZZZ", None, None)] * PREVIEWS
        statuses = Counter(r.status for r in fire_together(server, calls))
        assert statuses == Counter({404: ADMITTED, 429: PREVIEWS - ADMITTED})

        owner = make_token(str(uuid.uuid4()), name="Owner")
        group = server.call("POST", "/api/v1/groups", {"name": "Metrics"}, owner).body
        created = [
            server.call(
                "POST",
                f"/api/v1/groups/{group['id']}/invites",
                {"max_uses": 1},
                owner,
                {"Idempotency-Key": "one-invite"},
            )
            for _ in range(2)  # the second is a replay: one invite created
        ]
        assert [r.status for r in created] == [201, 201]
        code = created[0].body["code"]
        first, second = make_token(str(uuid.uuid4())), make_token(str(uuid.uuid4()))
        joins = [
            ("POST", "/api/v1/groups/join", {"code": code}, first),  # joined
            ("POST", "/api/v1/groups/join", {"code": code}, first),  # already_member
            ("POST", "/api/v1/groups/join", {"code": code}, second),  # exhausted
            ("POST", "/api/v1/groups/join", {"code": "ZZZ-ZZZ-ZZZ"}, second),  # not_found
            ("POST", "/api/v1/groups/join", {"code": "nope"}, second),  # invalid_code
        ]
        assert [server.call(*join).status for join in joins] == [200, 409, 410, 404, 400]
        reply = server.call("GET", "/metrics")
    assert reply.status == 200
    assert reply.content_type.startswith("text/plain")

    found = samples(reply.text)
    route = (("method", "GET"), ("route", "/api/v1/invites/{code}"))
    assert found[("http_requests_total", (*route, ("status", "404")))] == ADMITTED
    assert found[("http_requests_total", (*route, ("status", "429")))] == PREVIEWS - ADMITTED
    assert found[("rate_limited_total", (("limit", "lookup"),))] == PREVIEWS - ADMITTED
    assert found[("http_request_duration_seconds_count", route)] == PREVIEWS
    assert found[("http_request_duration_seconds_bucket", (("le", "+Inf"), *route))] == PREVIEWS
    assert found[("http_request_duration_seconds_sum", route)] > 0
    assert found[("invites_created_total", ())] == 1
    outcomes = {
        dict(labels)["outcome"]: value
        for (name, labels), value in found.items()
        if name == "invite_joins_total"
    }
    assert outcomes == {
        "joined": 1,
        "already_member": 1,
        "expired": 0,
        "exhausted": 1,
        "not_found": 1,
        "invalid_code": 1,
    }
    # Each live worker's pool may open 2 x DB_POOL_SIZE (5) connections.
    assert found[("db_pool_connections_max", ())] == WORKERS * 10
    assert 0 <= found[("db_pool_connections_in_use", ())] <= WORKERS * 10


@pytest.mark.parametrize(
    ("rule", "template"),
    [
        ("/api/v1/invites/<code:code>", "/api/v1/invites/{code}"),
        (
            "/api/v1/groups/<id:group_id>/invites/<id:invite_id>",
            "/api/v1/groups/{group_id}/invites/{invite_id}",
        ),
        ("/api/v1/groups/<group_id:group_id>", "/api/v1/groups/{group_id}"),
        ("/healthz", "/healthz"),
        (None, "<unmatched>"),
    ],
)
def test_the_route_label_is_the_openapi_template(rule, template):
    assert route_template(rule) == template


def test_metrics_answer_only_to_the_allowed_addresses(make_app):
    app = make_app()
    local = app.test_client().get("/metrics")
    assert local.status_code == 200
    assert b"http_requests_total" in local.data
    outside = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert outside.status_code == 404
    assert outside.get_json()["error"] == "not_found"
    # Through a trusted gateway on the same host, the real client is what counts.
    gateway = make_app(TRUSTED_PROXY_COUNT=1).test_client()
    relayed = gateway.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 404
    scraper = make_app(METRICS_ALLOW=_networks("10.0.0.0/8")).test_client()
    assert scraper.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert scraper.get("/metrics").status_code == 404  # loopback is no longer listed


def _networks(*cidrs):
    import ipaddress

    return tuple(ipaddress.ip_network(c) for c in cidrs)


def test_a_refused_join_is_counted_under_its_limit(make_app, api):
    app = make_app(JOIN_RATE_LIMIT="1/minute")
    client = app.test_client()
    user = api.user("Limited")

    def limited(name: str) -> float:
        text = client.get("/metrics").get_data(as_text=True)
        return samples(text)[("rate_limited_total", (("limit", name),))]

    before = limited("join")
    replies = [
        client.post("/api/v1/groups/join", json={"code": "ZZZ-ZZZ-ZZZ"}, headers=user.headers)
        for _ in range(3)
    ]
    assert [r.status_code for r in replies] == [404, 429, 429]
    assert limited("join") - before == 2
