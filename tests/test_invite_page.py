"""GET /join/{code}: the invite page, and the app-link files beside it."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from app.api.invite_page import CONTENT_SECURITY_POLICY
from app.liveserver import free_port

SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"


class Page(HTMLParser):
    """What an unfurler or a test reads from a page: meta tags, title, text, links."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.meta: dict[str, str] = {}
        self.links: list[dict] = []
        self.anchors: list[dict] = []
        self.title = ""
        self.h1 = ""
        self.text_parts: list[str] = []
        self.lang = None
        self.scripts = 0
        self._in: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        elif tag == "meta":
            key = attributes.get("property") or attributes.get("name")
            if key:
                self.meta[key] = attributes.get("content", "")
        elif tag == "link":
            self.links.append(attributes)
        elif tag == "a":
            self.anchors.append({**attributes, "text": ""})
        elif tag == "script":
            self.scripts += 1
        if tag not in ("meta", "link", "br", "img"):
            self._in.append(tag)

    def handle_endtag(self, tag):
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass

    def handle_data(self, data):
        if "title" in self._in:
            self.title += data
        elif "body" in self._in:
            self.text_parts.append(data)
            if "h1" in self._in:
                self.h1 += data
            if "a" in self._in and self.anchors:
                self.anchors[-1]["text"] += data

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.text_parts).split())


def page(response) -> Page:
    assert response.content_type == "text/html; charset=utf-8", response.content_type
    return Page(response.get_data(as_text=True))


@pytest.fixture
def invite(api, owner, group) -> dict:
    return api.create_invite(owner, group["id"], max_uses=2, expires_in_hours=48)


def assert_page_headers(response) -> None:
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in headers["X-Robots-Tag"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    html = page(response)
    assert html.meta["robots"].startswith("noindex")
    assert html.meta["referrer"] == "no-referrer"
    assert html.lang == "en"
    assert html.scripts == 0
    # The only resource: the stylesheet, from this service.
    stylesheets = [link["href"] for link in html.links if link["rel"] == "stylesheet"]
    assert stylesheets == ["/static/invite-page.css"]


# --- a live code ------------------------------------------------------------------------


def test_a_live_code_shows_the_group_role_expiry_and_code(client, api, owner, invite):
    response = client.get(f"/join/{invite['code']}")
    assert response.status_code == 200
    html = page(response)
    preview = client.get(f"/api/v1/invites/{invite['code']}").get_json()
    name = preview["group"]["name"]
    assert html.title == f"Join {name}"
    assert html.h1.strip() == name
    assert "1 member" in html.text  # the owner
    assert "You\u2019ll join as a member" in html.text
    assert invite["code"] in html.text
    assert_page_headers(response)


def test_times_are_utc_dates_in_words(client, invite, sql):
    sql(
        "UPDATE group_invites SET expires_at = '2099-11-24 10:30:00+00' WHERE id = :id",
        id=invite["id"],
    )
    html = page(client.get(f"/join/{invite['code']}"))
    assert "Invite expires 24 November 2099, 10:30 UTC" in html.text
    assert '<time datetime="2099-11-24T10:30:00Z">' in client.get(
        f"/join/{invite['code']}"
    ).get_data(as_text=True)


def test_an_admin_invite_says_so_and_counts_members(client, api, owner, group):
    api.member(group["id"])
    api.member(group["id"])
    invite = api.create_invite(owner, group["id"], preset_role="admin")
    html = page(client.get(f"/join/{invite['code']}"))
    assert "You\u2019ll join as an admin" in html.text
    assert "3 members" in html.text


@pytest.mark.parametrize(
    "spelling", [str.lower, lambda c: c.replace("-", ""), lambda c: " ".join(c.split("-"))]
)
def test_the_code_is_normalised_like_the_api_does(client, invite, spelling):
    response = client.get(f"/join/{spelling(invite['code'])}")
    assert response.status_code == 200
    html = page(response)
    assert invite["code"] in html.text  # shown as issued
    assert html.meta["og:url"] == f"https://invites.example/join/{invite['code']}"


def test_the_page_and_the_preview_agree(client, invite):
    preview = client.get(f"/api/v1/invites/{invite['code']}").get_json()
    html = page(client.get(f"/join/{invite['code']}"))
    assert preview["group"]["icon_emoji"] is None or preview["group"]["icon_emoji"] in html.text
    assert f"{preview['group']['member_count']} member" in html.text


def test_the_group_icon_is_shown(client, api, owner):
    group = api.create_group(owner, name="Smith Family", icon_emoji="🏡")
    invite = api.create_invite(owner, group["id"])
    response = client.get(f"/join/{invite['code']}")
    assert '<div class="icon" aria-hidden="true">🏡</div>' in response.get_data(as_text=True)


# --- the unfurl ---------------------------------------------------------------------------


def test_an_unfurler_reads_join_and_the_group_name(app, api, owner):
    group = api.create_group(owner, name="Smith Family", icon_emoji="🏡")
    invite = api.create_invite(owner, group["id"], max_uses=5)
    bot = app.test_client(use_cookies=False)
    response = bot.get(f"/join/{invite['code']}", headers={"User-Agent": SLACKBOT})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    meta = page(response).meta
    assert meta["og:title"] == "Join Smith Family"
    assert meta["twitter:title"] == "Join Smith Family"
    assert meta["twitter:card"] == "summary"
    assert meta["og:type"] == "website"
    assert meta["og:url"] == f"https://invites.example/join/{invite['code']}"
    assert meta["og:description"].startswith(
        "You\u2019re invited to join Smith Family as a member."
    )
    assert "1 member." in meta["og:description"]
    assert meta["og:description"] == meta["description"] == meta["twitter:description"]


def test_html_in_a_group_name_is_text(client, api, owner):
    name = '<script>alert(1)</script> "Q" & <b>'
    group = api.create_group(owner, name=name)
    invite = api.create_invite(owner, group["id"])
    response = client.get(f"/join/{invite['code']}")
    body = response.get_data(as_text=True)
    assert "<script>" not in body
    assert "<b>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    html = page(response)
    assert html.scripts == 0
    assert html.h1.strip() == name  # what a reader sees: the name as typed
    assert html.meta["og:title"] == f"Join {name}"


# --- the button -------------------------------------------------------------------------


def test_without_a_deep_link_there_is_no_button_only_the_code(client, invite):
    html = page(client.get(f"/join/{invite['code']}"))
    assert html.anchors == []
    assert "To join, open the app and enter this code" in html.text


def test_the_deep_link_opens_the_app_with_the_code(make_app, api, owner, group):
    invite = api.create_invite(owner, group["id"])
    app = make_app(APP_DEEP_LINK="myapp://join/{code}")
    response = app.test_client().get(f"/join/{invite['code'].lower()}")
    html = page(response)
    assert html.anchors == [
        {
            "class": "button",
            "href": f"myapp://join/{invite['code']}",
            "text": "Open the app to join",
        }
    ]
    assert "Or enter this code in the app" in html.text


def test_a_universal_link_works_as_the_deep_link(make_app, api, owner, group):
    invite = api.create_invite(owner, group["id"])
    app = make_app(APP_DEEP_LINK="https://app.example/invite?code={code}&src=web")
    html = page(app.test_client().get(f"/join/{invite['code']}"))
    assert html.anchors[0]["href"] == f"https://app.example/invite?code={invite['code']}&src=web"


# --- codes that are not live --------------------------------------------------------------


def test_an_expired_code_is_410_and_says_so(client, api, owner, group):
    invite = api.create_invite(owner, group["id"])
    api.expire(invite["id"])
    response = client.get(f"/join/{invite['code']}")
    assert response.status_code == 410
    html = page(response)
    assert html.h1 == "This invite has expired"
    assert group["name"] in html.text
    assert "Ask someone in the group" in html.text
    assert invite["code"] not in html.text
    assert html.anchors == []
    assert_page_headers(response)


def test_a_used_up_code_is_410_and_says_so(client, api, owner, group):
    invite = api.create_invite(owner, group["id"], max_uses=1)
    assert api.join(api.user("Bob"), invite["code"]).status_code == 200
    response = client.get(f"/join/{invite['code']}")
    assert response.status_code == 410
    html = page(response)
    assert html.h1 == "This invite has been used up"
    assert html.meta["og:title"] == "This invite has been used up"
    assert_page_headers(response)


def test_an_unknown_and_a_revoked_code_read_the_same_and_reveal_nothing(client, api, owner, group):
    invite = api.create_invite(owner, group["id"])
    revoke = client.delete(
        f"/api/v1/groups/{group['id']}/invites/{invite['id']}", headers=owner.headers
    )
    assert revoke.status_code == 204
    revoked = client.get(f"/join/{invite['code']}")
    unknown = client.get("/join/ZZZ-ZZZ-ZZZ")
    assert revoked.status_code == unknown.status_code == 404
    strip = re.compile(r"ZZZ-ZZZ-ZZZ|" + re.escape(invite["code"]))
    assert strip.sub("", revoked.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True)
    )
    html = page(revoked)
    assert html.h1 == "This invite isn\u2019t available"
    assert group["name"] not in html.text
    assert "og:url" not in html.meta
    assert_page_headers(revoked)


@pytest.mark.parametrize(
    "code", ["hello", "ABC-234-XY0", "ABC-234-XYZW", "ABC%2F234-XYZ", "ABC-234-XYZ/"]
)
def test_a_malformed_code_is_400(client, code):
    response = client.get(f"/join/{code}")
    assert response.status_code == 400
    html = page(response)
    assert html.h1 == "This isn\u2019t a valid invite link"
    assert "ABC-234-XYZ" in html.text  # what a code looks like
    assert_page_headers(response)


# --- rate limits ---------------------------------------------------------------------------


def test_the_lookup_limit_answers_an_html_429_with_retry_after(make_app, invite):
    client = make_app(INVITE_LOOKUP_RATE_LIMIT="2/minute").test_client()
    for _ in range(2):
        assert client.get(f"/join/{invite['code']}").status_code == 200
    response = client.get(f"/join/{invite['code']}")
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert response.headers["X-RateLimit-Limit"] == "2"
    html = page(response)
    assert html.h1 == "Too many tries"
    assert re.search(r"Try again in \d+ (second|minute)s?\.", html.text), html.text
    assert_page_headers(response)
    # The API keeps its envelope.
    api_response = client.get(f"/api/v1/invites/{invite['code']}")
    assert api_response.status_code in (200, 429)
    assert api_response.is_json


def test_unknown_codes_spend_the_guessing_budget_shared_with_the_api(make_app):
    client = make_app(LOOKUP_FAILURE_LIMIT="2/day").test_client()
    assert client.get("/api/v1/invites/ZZZ-ZZZ-ZZ2").status_code == 404
    assert client.get("/join/ZZZ-ZZZ-ZZ3").status_code == 404
    response = client.get("/join/ZZZ-ZZZ-ZZ4")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 60
    assert "Try again in" in page(response).text
    assert client.get("/api/v1/invites/ZZZ-ZZZ-ZZ5").get_json()["error"] == "rate_limited"


def test_live_and_malformed_lookups_do_not_spend_the_guessing_budget(make_app, invite):
    client = make_app(LOOKUP_FAILURE_LIMIT="1/day").test_client()
    for _ in range(3):
        assert client.get(f"/join/{invite['code']}").status_code == 200
        assert client.get("/join/nope").status_code == 400
    assert client.get("/join/ZZZ-ZZZ-ZZZ").status_code == 404


def test_an_unavailable_database_is_an_html_503(make_app):
    app = make_app(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/none")
    response = app.test_client().get("/join/ABC-234-XYZ")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    html = page(response)
    assert html.h1 == "We can\u2019t show this invite right now"
    assert "Try again in 5 seconds." in html.text


# --- the page switched off, and the rest of the service ----------------------------------


def test_invite_page_off_leaves_join_to_another_web_app(make_app, invite):
    client = make_app(INVITE_PAGE="off").test_client()
    response = client.get(f"/join/{invite['code']}")
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found", "message": "No such endpoint."}


def test_other_routes_keep_the_json_envelope(client):
    assert client.get("/api/v1/invites/nope").get_json()["error"] == "invalid_code"
    assert client.get("/join").get_json()["error"] == "not_found"
    response = client.post("/join/ABC-234-XYZ")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_the_stylesheet_is_served_by_the_service(client):
    with client.get("/static/invite-page.css") as response:
        assert response.status_code == 200
        assert response.mimetype == "text/css"
        assert ".button" in response.get_data(as_text=True)


def test_the_page_is_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert not [path for path in paths if path.startswith(("/join", "/.well-known"))]


# --- app-link files --------------------------------------------------------------------------

CERT = ":".join(["AB"] * 32)
CERT2 = ":".join(["0f"] * 32)


def test_app_link_files_are_404_when_unconfigured(client):
    for path in ("/.well-known/assetlinks.json", "/.well-known/apple-app-site-association"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["error"] == "not_found"


def test_assetlinks_from_configuration(make_app):
    app = make_app(ANDROID_APP_PACKAGE="com.example.groups", ANDROID_CERT_SHA256=f"{CERT}, {CERT2}")
    response = app.test_client().get("/.well-known/assetlinks.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": "com.example.groups",
                "sha256_cert_fingerprints": [CERT, CERT2.upper()],
            },
        }
    ]


def test_apple_app_site_association_from_configuration(make_app):
    app = make_app(APPLE_APP_IDS="ABCDE12345.com.example.groups,ZYXWV98765.com.example.beta")
    response = app.test_client().get("/.well-known/apple-app-site-association")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    details = response.get_json()["applinks"]["details"]
    assert [d["appIDs"] for d in details] == [
        ["ABCDE12345.com.example.groups"],
        ["ZYXWV98765.com.example.beta"],
    ]
    assert all(d["components"] == [{"/": "/join/*"}] for d in details)
    assert all(d["paths"] == ["/join/*"] for d in details)


def test_app_link_files_are_served_when_the_page_is_off(make_app):
    app = make_app(INVITE_PAGE="off", APPLE_APP_IDS="ABCDE12345.com.example.groups")
    assert app.test_client().get("/.well-known/apple-app-site-association").status_code == 200


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"INVITE_PAGE": "maybe"}, "INVITE_PAGE must be on or off"),
        ({"APP_DEEP_LINK": "myapp://join"}, "APP_DEEP_LINK"),
        ({"APP_DEEP_LINK": "myapp://join/{code}/{code}"}, "APP_DEEP_LINK"),
        ({"APP_DEEP_LINK": "javascript:alert('{code}')"}, "APP_DEEP_LINK"),
        ({"APP_DEEP_LINK": "myapp://join/{code} x"}, "APP_DEEP_LINK"),
        ({"APP_DEEP_LINK": "myapp://join/{id}?c={code}"}, "APP_DEEP_LINK"),
        ({"APP_DEEP_LINK": "/join/{code}"}, "APP_DEEP_LINK"),
        ({"APP_DEEP_LINK": "https:///join/{code}"}, "APP_DEEP_LINK"),
        ({"ANDROID_APP_PACKAGE": "com.example.app"}, "go together"),
        ({"ANDROID_CERT_SHA256": CERT}, "go together"),
        (
            {"ANDROID_APP_PACKAGE": "example", "ANDROID_CERT_SHA256": CERT},
            "ANDROID_APP_PACKAGE must be",
        ),
        (
            {"ANDROID_APP_PACKAGE": "com.example.app", "ANDROID_CERT_SHA256": "AB:CD"},
            "ANDROID_CERT_SHA256 must list",
        ),
        ({"APPLE_APP_IDS": "com.example.app"}, "APPLE_APP_IDS must list"),
    ],
)
def test_bad_settings_are_refused_at_startup(settings, problem):
    from app.config import check, read_env

    config, _ = read_env({"JWT_SECRET_KEY": "x" * 40, "DATABASE_URL": "postgresql://x"})
    config.update({"CODE_KEYS": None, **settings})
    problems = [line for line in check(config) if "CODE_KEYS" not in line]
    assert len(problems) == 1, problems
    assert problem in problems[0]
    assert "\n" not in problems[0]


def test_the_settings_are_read_from_the_environment():
    from app.config import read_env

    config, problems = read_env(
        {
            "INVITE_PAGE": " OFF ",
            "APP_DEEP_LINK": "myapp://join/{code}",
            "ANDROID_APP_PACKAGE": "com.example.app",
            "ANDROID_CERT_SHA256": CERT,
            "APPLE_APP_IDS": "ABCDE12345.com.example.app",
        }
    )
    assert problems == []
    assert config["INVITE_PAGE"] == "off"
    assert config["APP_DEEP_LINK"] == "myapp://join/{code}"
    assert config["ANDROID_APP_PACKAGE"] == "com.example.app"
    assert config["APPLE_APP_IDS"] == "ABCDE12345.com.example.app"
    defaults, _ = read_env({})
    assert defaults["INVITE_PAGE"] == "on"
    assert defaults["APP_DEEP_LINK"] is None


# --- words --------------------------------------------------------------------------------


def test_words_for_times_and_durations():
    import datetime as dt

    from app.api.invite_page import duration_in_words, utc_in_words

    moment = dt.datetime(2026, 11, 24, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert utc_in_words(moment) == "24 November 2026, 10:30 UTC"
    assert duration_in_words(0.2) == "1 second"
    assert duration_in_words(45) == "45 seconds"
    assert duration_in_words(61) == "2 minutes"  # a wait is never said shorter than it is
    assert duration_in_words(86399) == "24 hours"
    assert duration_in_words(172790, approximate=True) == "about 2 days"
    assert duration_in_words(3700, approximate=True) == "about 62 minutes"


def test_a_live_page_says_roughly_how_long_is_left(client, invite):
    assert "(in about 2 days)" in page(client.get(f"/join/{invite['code']}")).text
