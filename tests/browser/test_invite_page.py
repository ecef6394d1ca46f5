"""The invite page (/join/{code}) in a real headless Chromium against a real gunicorn.

Each state is opened at a phone's size (375x812) and a desktop's (1280x800):
the words and the button are checked, every request the page makes must go to
the service itself (Chromium resolves every other host to nothing, and the
requests are listed), the stylesheet must apply under the page's strict
Content-Security-Policy with nothing on the console, and axe-core must find no
WCAG 2.1 A or AA violation. Screenshots go to build/invite-page/.

Run by ``make test-browser``, which installs axe-core (tests/browser/package.json)
into tests/browser/node_modules; needs /usr/bin/chromium (``apt-get install chromium``).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.browser.cdp import Chromium
from tests.helpers import JWT_SECRET, make_token, serving

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "build" / "invite-page"
HOSTNAME = "invites.test"  # .test never resolves on a real network
DEEP_LINK = "myapp://join/{code}"
VIEWPORTS = [(375, 812), (1280, 800)]
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
# 404s the module's visits spend from the guessing budget (two states, two sizes),
# and a margin; the rate-limited state spends the rest.
FAILURE_BUDGET = 6

FACTS = """JSON.stringify((() => {
  const main = document.querySelector("main");
  const h1 = document.querySelector("h1");
  return {
    lang: document.documentElement.lang,
    title: document.title,
    h1: h1 ? h1.textContent.trim() : null,
    text: document.body.innerText.replace(/\\s+/g, " ").trim(),
    links: [...document.querySelectorAll("a")].map(a => {
      const box = a.getBoundingClientRect();
      return {href: a.getAttribute("href"), text: a.textContent.trim(), height: box.height};
    }),
    landmarks: [...document.querySelectorAll("main, footer")].map(e => e.tagName.toLowerCase()),
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    cardBackground: main ? getComputedStyle(main).backgroundColor : null,
  };
})())"""

AXE_RUN = """axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]})
  .then(r => JSON.stringify(r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary),
  }))))"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        pytest.fail(
            f"axe-core is not installed ({AXE} is missing): `make test-browser` installs it "
            "(cd tests/browser && npm ci)",
            pytrace=False,
        )
    return AXE.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing); apt-get install chromium",
            pytrace=False,
        )
    chromium = Chromium(
        CHROMIUM,
        tmp_path_factory.mktemp("chromium-profile"),
        f"--host-resolver-rules=MAP {HOSTNAME} 127.0.0.1, MAP * ~NOTFOUND",
    )
    yield chromium
    chromium.quit()


@pytest.fixture(scope="module")
def server(database_url, engine, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    settings = {
        "DATABASE_URL": database_url,
        "JWT_SECRET_KEY": JWT_SECRET,
        "APP_DEEP_LINK": DEEP_LINK,
        "LOOKUP_FAILURE_LIMIT": f"{FAILURE_BUDGET}/day",
    }
    with serving(settings, log_path, workers=1) as srv:
        yield srv


def _call(server, method, path, body=None, token=None, expect=200):
    reply = server.call(method, path, body, token)
    assert reply.status == expect, reply
    return reply.body


@pytest.fixture(scope="module")
def codes(server, engine) -> dict[str, str]:
    """A code in every state, in one group: Smith Family, four members."""
    owner = make_token(str(uuid.uuid4()), name="Olivia")
    group = _call(
        server, "POST", "/api/v1/groups", {"name": "Smith Family", "icon_emoji": "🏡"}, owner, 201
    )
    invites = f"/api/v1/groups/{group['id']}/invites"

    def invite(**body):
        return _call(server, "POST", invites, body, owner, 201)

    live = invite(max_uses=10, expires_in_hours=48)
    for name in ("Bob", "Carol"):
        joiner = make_token(str(uuid.uuid4()), name=name)
        _call(server, "POST", "/api/v1/groups/join", {"code": live["code"]}, joiner)
    expired = invite()
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE group_invites SET created_at = now() - interval '2 hours',"
                " expires_at = now() - interval '1 second' WHERE id = :id"
            ),
            {"id": expired["id"]},
        )
    exhausted = invite(max_uses=1)
    _call(
        server,
        "POST",
        "/api/v1/groups/join",
        {"code": exhausted["code"]},
        make_token(str(uuid.uuid4()), name="Dan"),
    )
    revoked = invite()
    _call(server, "DELETE", f"{invites}/{revoked['id']}", None, owner, 204)
    return {
        "live": live["code"],
        "expired": expired["code"],
        "exhausted": exhausted["code"],
        "revoked": revoked["code"],
        "unknown": "ZZZ-ZZZ-ZZZ",
        "malformed": "not-a-code",
    }


# state: (status, h1, words the page must show)
STATES = {
    "live": (200, "Smith Family", ["You\u2019re invited to join", "4 members", "a member", "UTC"]),
    "expired": (410, "This invite has expired", ["Smith Family", "new one"]),
    "exhausted": (410, "This invite has been used up", ["Smith Family", "new one"]),
    "revoked": (404, "This invite isn\u2019t available", ["Ask the person who sent it"]),
    "unknown": (404, "This invite isn\u2019t available", ["Ask the person who sent it"]),
    "malformed": (400, "This isn\u2019t a valid invite link", ["ABC-234-XYZ"]),
}


def page_url(server, code: str) -> str:
    return f"http://{HOSTNAME}:{server.port}/join/{code}"


def check_page(browser, axe_source, server, url, size, name, status):
    """Open ``url`` at ``size``; the generic checks; the page's facts."""
    width, height = size
    visit = browser.open(url, width, height)
    try:
        assert visit.status == status
        facts = json.loads(browser.evaluate(visit, FACTS))
        # Everything the page asked for came from the service itself.
        own = ("http", HOSTNAME, server.port)
        fetched = [urlsplit(u) for u in visit.requests if not u.startswith("data:")]
        assert fetched, visit.requests
        assert [u.geturl() for u in fetched if (u.scheme, u.hostname, u.port) != own] == []
        # The stylesheet applied under the CSP; nothing was refused or failed.
        assert facts["cardBackground"] == "rgb(255, 255, 255)", facts
        assert facts["overflow"] <= 0, f"wider than the {width}px viewport"
        assert facts["lang"] == "en"
        assert facts["landmarks"] == ["main", "footer"]
        browser.evaluate(visit, axe_source)
        violations = browser.evaluate(visit, AXE_RUN % WCAG_TAGS, await_promise=True)
        assert violations == "[]", violations
        browser.record(visit)
        assert visit.console_errors == []
        shot = browser.screenshot(visit, SCREENSHOTS / f"{name}-{width}x{height}.png")
        assert len(shot) > 5_000
        return facts, visit
    finally:
        browser.close(visit)


@pytest.mark.parametrize("size", VIEWPORTS, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("state", list(STATES))
def test_each_state_reads_right_and_passes_axe(browser, axe_source, server, codes, state, size):
    status, h1, words = STATES[state]
    facts, _ = check_page(
        browser, axe_source, server, page_url(server, codes[state]), size, state, status
    )
    assert facts["h1"] == h1
    for word in words:
        assert word in facts["text"], facts["text"]
    if state == "live":
        assert facts["title"] == "Join Smith Family"
        assert codes["live"] in facts["text"]
        assert facts["links"] == [
            {
                "href": DEEP_LINK.replace("{code}", codes["live"]),
                "text": "Open the app to join",
                "height": facts["links"][0]["height"],
            }
        ]
        assert facts["links"][0]["height"] >= 44  # a comfortable tap target
    else:
        assert facts["links"] == []
        assert codes["live"] not in facts["text"]
    if state in ("revoked", "unknown", "malformed"):
        assert "Smith Family" not in facts["text"]


def test_the_button_shows_where_keyboard_focus_is(browser, server, codes):
    visit = browser.open(page_url(server, codes["live"]), 375, 812)
    try:
        browser.press_tab(visit)
        focused = json.loads(
            browser.evaluate(
                visit,
                "JSON.stringify({tag: document.activeElement.tagName,"
                " outline: getComputedStyle(document.activeElement).outlineStyle,"
                " width: getComputedStyle(document.activeElement).outlineWidth})",
            )
        )
        assert focused == {"tag": "A", "outline": "solid", "width": "3px"}
    finally:
        browser.close(visit)


def test_rate_limited_is_a_page_too(browser, axe_source, server):
    # Spend what is left of this address's guessing budget (the visits above took some).
    for attempt in range(FAILURE_BUDGET + 1):
        reply = server.call("GET", f"/join/ZZZ-ZZZ-Z{attempt % 10 + 2}Z".replace("1", "2"))
        if reply.status == 429:
            break
    assert reply.status == 429, reply
    assert int(reply.headers["Retry-After"]) > 0
    for size in VIEWPORTS:
        facts, _ = check_page(
            browser,
            axe_source,
            server,
            page_url(server, "ZZZ-ZZZ-ZZZ"),
            size,
            "rate-limited",
            429,
        )
        assert facts["h1"] == "Too many tries"
        assert "Try again in" in facts["text"]
