"""Configuration from the environment, and the settings the service refuses to start with."""

from __future__ import annotations

import pytest

from app import config
from app.config import ConfigError

SECRET = "s" * 32
CODE_KEYS = "k1:" + "A" * 43  # 32 bytes, base64url
VALID_ENV = {
    "DATABASE_URL": "postgresql://db.example/invites",
    "JWT_SECRET_KEY": SECRET,
    "CODE_KEYS": CODE_KEYS,
}
PRODUCTION_ENV = {
    **VALID_ENV,
    "APP_ENV": "production",
    "APP_BASE_URL": "https://app.example",
    "RATELIMIT_STORAGE_URI": "redis://cache.example:6379/0",
}


def _public_key_pem(algorithm: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if algorithm == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_defaults_from_an_empty_environment():
    cfg = config.from_env({})
    assert cfg["APP_ENV"] == "development"
    assert cfg["DATABASE_URL"] is None
    assert cfg["APP_BASE_URL"] is None  # config.load fills in the local default
    assert cfg["MAX_ACTIVE_INVITES_PER_GROUP"] == 100
    assert cfg["TRUSTED_PROXY_COUNT"] == 0
    assert cfg["INVITE_LOOKUP_RATE_LIMIT"] == "30/minute"
    assert cfg["JOIN_RATE_LIMIT"] == "10/minute"
    assert cfg["RATELIMIT_STORAGE_URI"] is None  # the embedded Redis under gunicorn
    assert cfg["JWT_ALGORITHM"] == "HS256"
    assert cfg["JWT_DECODE_ALGORITHMS"] == ["HS256"]
    assert cfg["JWT_SECRET_KEY"] is None
    assert cfg["JWT_DECODE_AUDIENCE"] is None
    assert cfg["JWT_DECODE_ISSUER"] is None


def test_values_from_the_environment():
    cfg = config.from_env(
        {
            "APP_BASE_URL": "https://invites.example/ ",
            "MAX_ACTIVE_INVITES_PER_GROUP": " 7 ",
            "TRUSTED_PROXY_COUNT": "1",
            "JWT_ALGORITHM": "RS256",
            "JWT_DECODE_AUDIENCE": "invites",
            "INVITE_LOOKUP_RATE_LIMIT": "5/second",
            "RATELIMIT_STORAGE_URI": "redis://cache:6379/0",
        }
    )
    assert cfg["APP_BASE_URL"] == "https://invites.example"
    assert cfg["MAX_ACTIVE_INVITES_PER_GROUP"] == 7
    assert cfg["TRUSTED_PROXY_COUNT"] == 1
    # Only the configured algorithm is accepted when decoding.
    assert cfg["JWT_DECODE_ALGORITHMS"] == ["RS256"]
    assert cfg["JWT_DECODE_AUDIENCE"] == "invites"
    assert cfg["INVITE_LOOKUP_RATE_LIMIT"] == "5/second"
    assert cfg["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/0"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_ACTIVE_INVITES_PER_GROUP", "many"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "1.5"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "0"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "-5"),
        ("MAX_ACTIVE_INVITES_PER_GROUP", "101"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("TRUSTED_PROXY_COUNT", "one"),
        ("DB_POOL_SIZE", "0"),
        ("DB_STATEMENT_TIMEOUT_MS", "5s"),
        ("JWT_DECODE_LEEWAY", "ten"),
        ("MAX_CONTENT_LENGTH", "100"),
    ],
)
def test_bad_integers_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        config.from_env({name: value})


@pytest.mark.parametrize("value", ["", "   "])
def test_blank_integers_take_the_default(value):
    assert (
        config.from_env({"MAX_ACTIVE_INVITES_PER_GROUP": value})["MAX_ACTIVE_INVITES_PER_GROUP"]
        == 100
    )


def test_a_complete_configuration_is_accepted():
    config.validate(config.from_env(VALID_ENV))
    config.validate(config.from_env(PRODUCTION_ENV))
    config.validate(config.from_env({**VALID_ENV, "JOIN_RATE_LIMIT": "5 per minute;100/day"}))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_a_public_key_configuration_is_accepted(algorithm):
    env = {
        "DATABASE_URL": "postgresql://x/y",
        "CODE_KEYS": CODE_KEYS,
        "JWT_ALGORITHM": algorithm,
        "JWT_PUBLIC_KEY": _public_key_pem(algorithm),
    }
    config.validate(config.from_env(env))
    config.validate(
        config.from_env(
            {
                **env,
                "APP_ENV": "production",
                "APP_BASE_URL": "https://a.example",
                "RATELIMIT_STORAGE_URI": "redis://cache:6379",
            }
        )
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgresql://x/y"}, "JWT_SECRET_KEY is required"),
        ({**VALID_ENV, "JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY is required"),
        ({**VALID_ENV, "JWT_ALGORITHM": "RS256"}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "JWT_ALGORITHM": "ES256"}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "JWT_ALGORITHM": "none"}, "must be one of"),
        ({**VALID_ENV, "JWT_ALGORITHM": "HS512"}, "must be one of"),
        ({**VALID_ENV, "JWT_ALGORITHM": "hs256"}, "must be one of"),
        ({**VALID_ENV, "JWT_ALGORITHM": "RS256,HS256"}, "must be one of"),
        ({**PRODUCTION_ENV, "JWT_SECRET_KEY": "s" * 31}, "at least 32 characters"),
        ({**PRODUCTION_ENV, "APP_BASE_URL": ""}, "APP_BASE_URL"),
        ({**VALID_ENV, "JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": "not a key"}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "JWT_ALGORITHM": "ES256", "JWT_PUBLIC_KEY": SECRET}, "JWT_PUBLIC_KEY"),
        ({**VALID_ENV, "INVITE_LOOKUP_RATE_LIMIT": "lots"}, "INVITE_LOOKUP_RATE_LIMIT"),
        ({**VALID_ENV, "JOIN_RATE_LIMIT": "10/fortnight"}, "JOIN_RATE_LIMIT"),
        ({"JWT_SECRET_KEY": SECRET}, "DATABASE_URL"),
        ({**VALID_ENV, "DATABASE_URL": "  "}, "DATABASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "invites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "ftp://invites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example?x=1"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example#top"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example:port"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://in vites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example/p?"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example#"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://user:pw@invites.example"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invites.example/\x00"}, "APP_BASE_URL"),
        ({**VALID_ENV, "APP_BASE_URL": "https://invités.example"}, "APP_BASE_URL"),
        ({**PRODUCTION_ENV, "APP_BASE_URL": "/join"}, "APP_BASE_URL"),
        ({**PRODUCTION_ENV, "RATELIMIT_STORAGE_URI": ""}, "RATELIMIT_STORAGE_URI is required"),
        ({**VALID_ENV, "CODE_KEYS": ""}, "CODE_KEYS is required"),
        ({**VALID_ENV, "CODE_KEYS": "k1"}, "CODE_KEYS key 'k1' is not 32 bytes"),
        ({**VALID_ENV, "CODE_KEYS": "k1:" + "A" * 20}, "not 32 bytes"),
        ({**VALID_ENV, "CODE_KEYS": "bad id:" + "A" * 43}, "CODE_KEYS entries are id:key"),
        ({**VALID_ENV, "CODE_KEYS": f"{CODE_KEYS},{CODE_KEYS}"}, "names a key id twice"),
        ({**VALID_ENV, "RATELIMIT_STORAGE_URI": "memcached://m:11211"}, "RATELIMIT_STORAGE_URI"),
        ({**VALID_ENV, "RATELIMIT_STORAGE_URI": "cache:6379"}, "RATELIMIT_STORAGE_URI"),
    ],
)
def test_insecure_or_broken_configurations_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        config.validate(config.from_env(env))


@pytest.mark.parametrize(
    "url",
    [
        "https://invites.example",
        "http://127.0.0.1:8000",
        "https://example.com/groups",
        "http://[::1]:8000",
    ],
)
def test_base_urls_that_make_an_invite_url_are_accepted(url):
    config.validate(config.from_env({**VALID_ENV, "APP_BASE_URL": url}))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("::", "http://[::]:8000"),
        ("::1", "http://[::1]:8000"),
        ("[::1]", "http://[::1]:8000"),
    ],
)
def test_the_local_base_url_is_a_url_for_any_host(host, expected):
    url = config.local_base_url(host, "8000")
    assert url == expected
    assert config.is_base_url(url)


def test_a_short_secret_is_allowed_outside_production():
    config.validate(config.from_env({**VALID_ENV, "JWT_SECRET_KEY": "dev"}))


def test_a_private_key_is_not_accepted_as_the_public_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from app.config import ConfigError, from_env, validate

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    config = from_env(
        {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": private_pem, "DATABASE_URL": "postgresql://x"}
    )
    with pytest.raises(ConfigError, match="must be a public key"):
        validate(config)


@pytest.mark.parametrize(
    "store", ["redis://cache:6379/0", "rediss://cache:6380", "redis+unix:///run/redis.sock"]
)
def test_shared_limit_stores_are_accepted_anywhere(store):
    config.validate(config.from_env({**PRODUCTION_ENV, "RATELIMIT_STORAGE_URI": store}))
    assert config.memory_store_refusal(store, workers=8) is None


def test_the_memory_store_is_refused_with_more_than_one_worker():
    assert config.memory_store_refusal("memory://", workers=1) is None
    assert config.memory_store_refusal(None, workers=4) is None  # the embedded Redis
    refusal = config.memory_store_refusal("memory://", workers=4)
    assert "4 times looser" in refusal
    assert "WEB_CONCURRENCY=1" in refusal


def test_a_lone_process_counts_in_memory_when_no_store_is_set():
    loaded = config.load({**VALID_ENV})
    assert loaded["RATELIMIT_STORAGE_URI"] == "memory://"
