"""Configuration, read from the environment in one place."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError
from limits import parse_many

from app.code_keys import CodeKeyError, CodeKeyring

DEFAULT_LOOKUP_LIMIT = "30/minute"
DEFAULT_JOIN_LIMIT = "10/minute"
# Groups and invites together, per user: a token cannot fill the disk, while an
# internal caller may still seed a thousand invites in a minute.
DEFAULT_CREATE_LIMIT = "2000/minute;20000/day"
# Failed lookups of a code (previews and joins together): per address, and per
# /24 or /64 network. See docs/security.md for why these numbers.
DEFAULT_FAILURE_LIMIT = "9/day"
DEFAULT_NETWORK_FAILURE_LIMIT = "60/day"
# /metrics answers only to these client addresses unless METRICS_ALLOW says others.
DEFAULT_METRICS_ALLOW = "127.0.0.0/8,::1"
LOG_FORMATS = ("text", "json")
# The most active invites a group may hold: the OpenAPI document promises a list
# of at most this many (app/api/schemas.py).
MAX_ACTIVE_INVITES_CAP = 100


LIMIT_STORE_SCHEMES = frozenset(
    {"memory", "redis", "rediss", "redis+unix", "redis+sentinel", "redis+cluster"}
)


def memory_store_refusal(store: str | None, workers: int) -> str | None:
    """Why ``memory://`` cannot be honoured with this many worker processes, if it cannot."""
    if store and store.startswith("memory://") and workers > 1:
        return (
            f"RATELIMIT_STORAGE_URI=memory:// counts in each process: with {workers} workers "
            f"every limit would be up to {workers} times looser than configured. Use one "
            "worker (WEB_CONCURRENCY=1), redis://…, or leave it unset for the embedded Redis"
        )
    return None


class ConfigError(RuntimeError):
    """The environment does not describe a service that can start: every problem,
    one line each."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def _int_in(
    env: Mapping[str, str],
    name: str,
    default: int,
    problems: list[str],
    minimum: int = 0,
    maximum: int | None = None,
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name} must be an integer, got {raw!r}")
        return default
    if value < minimum:
        problems.append(f"{name} must be at least {minimum}, got {value}")
        return default
    if maximum is not None and value > maximum:
        problems.append(f"{name} must be at most {maximum}, got {value}")
        return default
    return value


def log_format_from_env(env: Mapping[str, str] | None = None) -> str:
    """``LOG_FORMAT``, lower-cased; an unknown one is reported by ``check``."""
    env = os.environ if env is None else env
    return env.get("LOG_FORMAT", "").strip().lower() or "text"


def split_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` as ``["a", "b", "c"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _addresses(raw: str, problems: list[str]) -> tuple:
    networks = []
    for part in split_list(raw):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            problems.append(f"METRICS_ALLOW must list addresses or networks, not {part!r}")
    return tuple(networks)


def from_env(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from environment variables."""
    config, problems = read_env(env)
    if problems:
        raise ConfigError(problems)
    return config


def read_env(env: Mapping[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The config mapping, and what in the environment could not be read."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def _int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        return _int_in(env, name, default, problems, minimum, maximum)

    algorithm = env.get("JWT_ALGORITHM", "HS256").strip() or "HS256"
    config: dict[str, Any] = {
        "APP_ENV": env.get("APP_ENV", "development").strip() or "development",
        "DATABASE_URL": env.get("DATABASE_URL", "").strip() or None,
        # Where `make run` listens (gunicorn.conf.py binds there).
        "HOST": env.get("HOST", "127.0.0.1"),
        "PORT": env.get("PORT", "8000"),
        # None here means "not configured"; `load` fills in the local default.
        "APP_BASE_URL": env.get("APP_BASE_URL", "").strip().rstrip("/") or None,
        "LOG_LEVEL": (env.get("LOG_LEVEL", "").strip() or "INFO").upper(),
        "MAX_ACTIVE_INVITES_PER_GROUP": _int(
            "MAX_ACTIVE_INVITES_PER_GROUP", 100, minimum=1, maximum=MAX_ACTIVE_INVITES_CAP
        ),
        "TRUSTED_PROXY_COUNT": _int("TRUSTED_PROXY_COUNT", 0),
        "DB_POOL_SIZE": _int("DB_POOL_SIZE", 5, minimum=1),
        "DB_STATEMENT_TIMEOUT_MS": _int("DB_STATEMENT_TIMEOUT_MS", 5000),
        "DB_POOL_TIMEOUT_S": _int("DB_POOL_TIMEOUT_S", 10, minimum=1),
        # Rate limits (the limits library's syntax) and their store.
        "INVITE_LOOKUP_RATE_LIMIT": env.get("INVITE_LOOKUP_RATE_LIMIT", "").strip()
        or DEFAULT_LOOKUP_LIMIT,
        "JOIN_RATE_LIMIT": env.get("JOIN_RATE_LIMIT", "").strip() or DEFAULT_JOIN_LIMIT,
        "CREATE_RATE_LIMIT": env.get("CREATE_RATE_LIMIT", "").strip() or DEFAULT_CREATE_LIMIT,
        # The guessing budget (docs/security.md): failed lookups per address and network.
        "LOOKUP_FAILURE_LIMIT": env.get("LOOKUP_FAILURE_LIMIT", "").strip()
        or DEFAULT_FAILURE_LIMIT,
        "NETWORK_LOOKUP_FAILURE_LIMIT": env.get("NETWORK_LOOKUP_FAILURE_LIMIT", "").strip()
        or DEFAULT_NETWORK_FAILURE_LIMIT,
        # None: unset. Under gunicorn the master then starts the embedded Redis
        # (gunicorn.conf.py); a lone process (a script, the test client) counts
        # in memory (``load``).
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "").strip() or None,
        "RATELIMIT_STORAGE_TIMEOUT_MS": _int("RATELIMIT_STORAGE_TIMEOUT_MS", 50, minimum=1),
        # Lets several deployments share one Redis without sharing counters.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "").strip() or "group-invites",
        # Tokens are issued elsewhere; this service only verifies them.
        "JWT_ALGORITHM": algorithm,
        "JWT_DECODE_ALGORITHMS": [algorithm],
        "JWT_SECRET_KEY": env.get("JWT_SECRET_KEY") or None,
        "JWT_PUBLIC_KEY": env.get("JWT_PUBLIC_KEY") or None,
        "JWT_DECODE_ISSUER": env.get("JWT_DECODE_ISSUER") or None,
        "JWT_DECODE_AUDIENCE": env.get("JWT_DECODE_AUDIENCE") or None,
        "JWT_DECODE_LEEWAY": _int("JWT_DECODE_LEEWAY", 0),
        "JWT_TOKEN_LOCATION": ["headers"],
        # Invite codes at rest (app/code_keys.py): id:base64url,... current first.
        "CODE_KEYS": env.get("CODE_KEYS", "").strip() or None,
        "JWT_IDENTITY_CLAIM": "sub",
        # Request bodies here are a few hundred bytes at most.
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 16 * 1024, minimum=1024),
        "LOG_FORMAT": log_format_from_env(env),
        # Who may read /metrics: the client address as trusted through the proxies.
        "METRICS_ALLOW": _addresses(
            env.get("METRICS_ALLOW", "").strip() or DEFAULT_METRICS_ALLOW, problems
        ),
        # The invite page at /join/{code} (app/api/invite_page.py), and what lets a
        # phone open the app for it instead: checked by ``invite_page_problems``.
        "INVITE_PAGE": env.get("INVITE_PAGE", "").strip().lower() or "on",
        "APP_DEEP_LINK": env.get("APP_DEEP_LINK", "").strip() or None,
        "ANDROID_APP_PACKAGE": env.get("ANDROID_APP_PACKAGE", "").strip() or None,
        "ANDROID_CERT_SHA256": env.get("ANDROID_CERT_SHA256", "").strip() or None,
        "APPLE_APP_IDS": env.get("APPLE_APP_IDS", "").strip() or None,
    }
    return config, problems


def load(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The environment's configuration with ``overrides`` on top (tests), validated,
    and ``APP_BASE_URL`` defaulting to where the service listens."""
    config, problems = read_env()
    config.update(overrides or {})
    problems += check(config)
    if problems:
        raise ConfigError(problems)
    config["RATELIMIT_STORAGE_URI"] = config["RATELIMIT_STORAGE_URI"] or "memory://"
    local = local_base_url(config["HOST"], config["PORT"])
    config["APP_BASE_URL"] = (config["APP_BASE_URL"] or local).rstrip("/")
    return config


def validate(config: Mapping[str, Any]) -> None:
    """Refuse settings that would run an insecure or broken service."""
    problems = check(config)
    if problems:
        raise ConfigError(problems)


def check(config: Mapping[str, Any]) -> list[str]:
    """Every problem with ``config``, one line each: settings that would run an
    insecure or broken service."""
    problems: list[str] = []
    refuse = problems.append
    for name in (
        "INVITE_LOOKUP_RATE_LIMIT",
        "JOIN_RATE_LIMIT",
        "CREATE_RATE_LIMIT",
        "LOOKUP_FAILURE_LIMIT",
        "NETWORK_LOOKUP_FAILURE_LIMIT",
    ):
        try:
            if not parse_many(config[name]):
                raise ValueError
        except ValueError:
            refuse(
                f"{name} is not a rate limit (e.g. '30/minute' or '10 per minute'): "
                f"{config[name]!r}"
            )
    algorithm = config["JWT_ALGORITHM"]
    if algorithm not in {"HS256", "RS256", "ES256"}:
        refuse(f"JWT_ALGORITHM must be one of HS256, RS256, ES256, not {algorithm!r}")
    elif algorithm == "HS256":
        secret = config.get("JWT_SECRET_KEY")
        if not secret:
            refuse("JWT_SECRET_KEY is required when JWT_ALGORITHM is HS256")
        elif config["APP_ENV"] == "production" and len(secret) < 32:
            refuse("JWT_SECRET_KEY must be at least 32 characters in production")
    elif not config.get("JWT_PUBLIC_KEY"):
        refuse(f"JWT_PUBLIC_KEY (PEM) is required when JWT_ALGORITHM is {algorithm}")
    else:
        try:
            key = get_default_algorithms()[algorithm].prepare_key(config["JWT_PUBLIC_KEY"])
        except (InvalidKeyError, ValueError, TypeError):
            refuse(f"JWT_PUBLIC_KEY is not a usable {algorithm} public key")
        else:
            if not isinstance(key, RSAPublicKey | EllipticCurvePublicKey):
                refuse("JWT_PUBLIC_KEY must be a public key (it looks like a private one)")
    if not config.get("DATABASE_URL"):
        refuse("DATABASE_URL is not set")
    if not config.get("CODE_KEYS"):
        refuse(
            "CODE_KEYS is required: the keys invite codes are stored under "
            "(`python -m app.code_keys new <id>` makes one)"
        )
    else:
        try:
            CodeKeyring.parse(config["CODE_KEYS"])
        except CodeKeyError as exc:
            refuse(str(exc))
    store = config.get("RATELIMIT_STORAGE_URI")
    if store is None and config["APP_ENV"] == "production":
        refuse(
            "RATELIMIT_STORAGE_URI is required in production (redis://…, shared by every "
            "replica): without it each process would count its own limits"
        )
    if store is not None and urlsplit(store).scheme not in LIMIT_STORE_SCHEMES:
        refuse(
            "RATELIMIT_STORAGE_URI must be redis://, rediss://, redis+unix://, "
            f"redis+sentinel://, redis+cluster:// or memory://, not {store!r}"
        )
    if config["APP_ENV"] == "production" and not config.get("APP_BASE_URL"):
        refuse("APP_BASE_URL is required in production (it makes invite_url)")
    if config.get("APP_BASE_URL") and not is_base_url(config["APP_BASE_URL"]):
        refuse(
            "APP_BASE_URL must be an absolute http(s) URL in ASCII (xn-- for international "
            "names), without credentials, query or fragment (e.g. https://invites.example), "
            f"not {config['APP_BASE_URL']!r}"
        )
    if config.get("LOG_FORMAT", "text") not in LOG_FORMATS:
        refuse(f"LOG_FORMAT must be text or json, not {config['LOG_FORMAT']!r}")
    problems += invite_page_problems(config)
    return problems


def is_base_url(value: str) -> bool:
    """`invite_url` is documented as a URI: its prefix must make one."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme in {"http", "https"}
        and bool(parts.hostname)
        and "?" not in value
        and "#" not in value
        and "@" not in parts.netloc  # no user:password in a link sent to people
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def local_base_url(host: str, port: str) -> str:
    """Where `make run` serves, as a URL (an IPv6 address goes in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


# --- the invite page and the app-link files (app/api/invite_page.py) ---------------------

INVITE_PAGE_VALUES = ("on", "off")
DEEP_LINK_PLACEHOLDER = "{code}"
# A deep link is put in an href: never one a browser would run or read locally.
UNSAFE_LINK_SCHEMES = frozenset({"javascript", "data", "vbscript", "file", "blob", "about"})
_LINK_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_LINK_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%{}]+")
_ANDROID_PACKAGE = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)+")
_CERT_SHA256 = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){31}")
_APPLE_APP_ID = re.compile(r"[A-Z0-9]{10}\.[A-Za-z0-9][A-Za-z0-9.-]*")


def cert_fingerprints(value: str | None) -> list[str]:
    """ANDROID_CERT_SHA256 as assetlinks.json spells fingerprints: upper-case hex pairs."""
    return [part.upper() for part in split_list(value)]


def deep_link(template: str, code: str) -> str:
    """APP_DEEP_LINK with the (canonical, URL-safe) code in place of ``{code}``."""
    return template.replace(DEEP_LINK_PLACEHOLDER, code)


def invite_page_problems(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with INVITE_PAGE, APP_DEEP_LINK and the app-link settings."""
    problems: list[str] = []
    refuse = problems.append
    page = config.get("INVITE_PAGE", "on")
    if page not in INVITE_PAGE_VALUES:
        refuse(f"INVITE_PAGE must be on or off, not {page!r}")
    link = config.get("APP_DEEP_LINK")
    if link:
        scheme = link.split(":", 1)[0] if ":" in link else ""
        if (
            link.count(DEEP_LINK_PLACEHOLDER) != 1
            or link.replace(DEEP_LINK_PLACEHOLDER, "").count("{")
            or link.replace(DEEP_LINK_PLACEHOLDER, "").count("}")
            or not _LINK_CHARS.fullmatch(link)
            or not _LINK_SCHEME.fullmatch(scheme)
            or scheme.lower() in UNSAFE_LINK_SCHEMES
            or (scheme.lower() in {"http", "https"} and not is_base_url(link.split("?")[0]))
        ):
            refuse(
                "APP_DEEP_LINK must be a URL with {code} once where the invite code goes, "
                "in a scheme of the app's (myapp://join/{code}) or https "
                f"(https://app.example/join/{{code}}), not {link!r}"
            )
    package = config.get("ANDROID_APP_PACKAGE")
    certs = cert_fingerprints(config.get("ANDROID_CERT_SHA256"))
    if package and not _ANDROID_PACKAGE.fullmatch(package):
        refuse(
            f"ANDROID_APP_PACKAGE must be an application id like com.example.app, not {package!r}"
        )
    if bool(package) != bool(certs):
        refuse(
            "ANDROID_APP_PACKAGE and ANDROID_CERT_SHA256 go together: assetlinks.json "
            "needs the package and its signing certificates' fingerprints"
        )
    bad = [cert for cert in certs if not _CERT_SHA256.fullmatch(cert)]
    if bad:
        refuse(
            "ANDROID_CERT_SHA256 must list SHA-256 fingerprints as 32 colon-separated hex "
            f"pairs (AB:CD:...), comma-separated; not {', '.join(repr(c) for c in bad)}"
        )
    bad = [
        app_id
        for app_id in split_list(config.get("APPLE_APP_IDS"))
        if not _APPLE_APP_ID.fullmatch(app_id)
    ]
    if bad:
        refuse(
            "APPLE_APP_IDS must list app ids as TEAMID.bundle.id (a 10-character team id), "
            f"comma-separated; not {', '.join(repr(a) for a in bad)}"
        )
    return problems
