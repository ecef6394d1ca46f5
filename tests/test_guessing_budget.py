"""The guessing budget: failed lookups of a code are limited per address and per
network, for the preview and the join together, without costing anyone who
looks up real codes (docs/security.md has the arithmetic)."""

from __future__ import annotations

import logging

import pytest

from app.api.limiter import client_network

UNKNOWN = "ZZZ-ZZZ-ZZZ"


@pytest.fixture
def budgeted(make_app):
    """Behind one trusted proxy, so each test picks its client's address."""
    return make_app(
        TRUSTED_PROXY_COUNT=1,
        LOOKUP_FAILURE_LIMIT="3/day",
        NETWORK_LOOKUP_FAILURE_LIMIT="5/day",
    ).test_client()


def _preview(client, code: str, address: str):
    return client.get(f"/api/v1/invites/{code}", headers={"X-Forwarded-For": address})


def test_an_address_that_keeps_guessing_is_stopped(budgeted, api, owner, group, caplog):
    live = api.create_invite(owner, group["id"])["code"]
    address = "198.51.100.7"
    # Real codes cost nothing: look one up as often as the rate limit allows.
    for _ in range(5):
        assert _preview(budgeted, live, address).status_code == 200
    # Three misses (a person mistyping three times) are answered...
    assert [_preview(budgeted, UNKNOWN, address).status_code for _ in range(3)] == [404] * 3
    # ...and then every lookup from that address waits, the real code too.
    with caplog.at_level(logging.WARNING, logger="app.guessing"):
        refused = [_preview(budgeted, code, address) for code in (UNKNOWN, live, live)]
    assert [r.status_code for r in refused] == [429, 429, 429]
    assert refused[0].get_json()["error"] == "rate_limited"
    assert int(refused[0].headers["Retry-After"]) >= 1
    budget_lines = [r for r in caplog.records if r.name == "app.guessing"]
    assert len(budget_lines) == 1  # one line, not one per refused request
    assert "guessing budget spent" in budget_lines[0].getMessage()
    assert live not in budget_lines[0].getMessage()
    # Another network is not affected.
    assert _preview(budgeted, live, "203.0.113.9").status_code == 200


def test_joins_draw_on_the_same_budget(budgeted, api):
    address = "198.51.100.20"
    user = api.user("Guesser")
    headers = {**user.headers, "X-Forwarded-For": address}
    assert _preview(budgeted, UNKNOWN, address).status_code == 404
    joins = [
        budgeted.post("/api/v1/groups/join", json={"code": UNKNOWN}, headers=headers).status_code
        for _ in range(3)
    ]
    assert joins == [404, 404, 429]


def test_a_network_shares_one_budget(budgeted, api, owner, group):
    live = api.create_invite(owner, group["id"])["code"]
    # Five addresses of one /24 each miss once: the network's budget of five is spent.
    for host in range(1, 6):
        assert _preview(budgeted, UNKNOWN, f"192.0.2.{host}").status_code == 404
    assert _preview(budgeted, live, "192.0.2.77").status_code == 429
    assert _preview(budgeted, live, "192.0.3.1").status_code == 200  # the next /24


def test_refused_input_is_not_a_failed_lookup(budgeted):
    # "ABO-234-XYZ" can never be a code (O): a typo the app explains, no guess.
    for _ in range(6):
        assert _preview(budgeted, "ABO-234-XYZ", "198.51.100.99").status_code == 400
    assert _preview(budgeted, UNKNOWN, "198.51.100.99").status_code == 404


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("198.51.100.7", "198.51.100.0/24"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234:5678::/64"),
        ("::ffff:198.51.100.7", "198.51.100.0/24"),
        ("not an address", "other:not an address"),
    ],
)
def test_networks_are_slash_24_and_slash_64(app, address, network):
    with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
        assert client_network() == network


def test_a_refused_join_spends_none_of_the_join_limit(make_app, api):
    client = make_app(
        TRUSTED_PROXY_COUNT=1, JOIN_RATE_LIMIT="2/minute", LOOKUP_FAILURE_LIMIT="1/day"
    )
    client = client.test_client()
    user = api.user("Refused")

    def join(address: str):
        headers = {**user.headers, "X-Forwarded-For": address}
        return client.post("/api/v1/groups/join", json={"code": UNKNOWN}, headers=headers)

    assert join("198.51.100.30").status_code == 404  # one join, and the address's budget
    assert [join("198.51.100.30").status_code for _ in range(3)] == [429] * 3
    # The three refusals took nothing of the user's join limit: one join is left.
    assert join("203.0.113.30").status_code == 404
    assert join("203.0.113.31").status_code == 429


def test_when_two_limits_refuse_retry_after_waits_for_both(make_app):
    client = make_app(INVITE_LOOKUP_RATE_LIMIT="1/minute", LOOKUP_FAILURE_LIMIT="1/day")
    client = client.test_client()
    assert client.get(f"/api/v1/invites/{UNKNOWN}").status_code == 404
    refused = client.get(f"/api/v1/invites/{UNKNOWN}")
    assert refused.status_code == 429
    # The minute's limit frees first; a client waiting only that long would be refused
    # again, so the answer names the day's budget.
    assert int(refused.headers["Retry-After"]) > 60
    assert refused.headers["X-RateLimit-Limit"] == "1"
