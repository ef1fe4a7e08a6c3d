from __future__ import annotations

import time
import uuid
from pathlib import Path

import jwt
import pytest

from impextech.catalog.settings import CatalogSettings
from impextech.identity.adapters.jwt_tokens import JwtAccessTokenCodec
from impextech.identity.domain.errors import InvalidToken
from impextech.identity.settings import IdentitySettings
from impextech.jobs.settings import JobsSettings
from impextech.kernel.domain.principal import Role
from impextech.platform.settings import Settings, SettingsError, all_settings

SECRET = b"s" * 64


def test_access_token_round_trip_carries_tenant_subject_roles_and_id() -> None:
    codec = JwtAccessTokenCodec(SECRET, 900)
    tenant, user, session = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    claims = codec.verify(codec.issue(tenant, user, Role.SELLER, session))
    assert (claims.tenant_id, claims.user_id, claims.role, claims.session_id) == (
        tenant,
        user,
        Role.SELLER,
        session,
    )
    assert len(claims.token_id) >= 16
    raw = jwt.decode(codec.issue(tenant, user, Role.SELLER, session), SECRET, algorithms=["HS256"])
    assert raw["exp"] - raw["iat"] == 900


def test_lifetime_above_fifteen_minutes_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 900"):
        JwtAccessTokenCodec(SECRET, 901)


def _forge(claims: dict[str, object], key: str | bytes = SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "impextech",
        "sub": str(uuid.uuid4()),
        "tid": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "roles": ["admin"],
        "jti": "abc",
        "iat": now,
        "exp": now + 60,
        **overrides,
    }


@pytest.mark.parametrize(
    "token",
    [
        _forge(_claims(), key=b"another-secret-of-enough-length!" * 2),
        _forge(_claims(exp=int(time.time()) - 60)),
        _forge(_claims(iss="someone-else")),
        _forge(_claims(roles=["admin", "seller"])),
        _forge(_claims(roles=["root"])),
        _forge(_claims(tid="not-a-uuid")),
        _forge({k: v for k, v in _claims().items() if k != "sid"}),
        _forge(_claims(), alg="HS512"),
        jwt.encode(_claims(), key="", algorithm="none"),
        "not.a.jwt",
        "",
    ],
)
def test_forged_or_broken_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        JwtAccessTokenCodec(SECRET).verify(token)


def test_settings_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env({"IMPEXTECH_DATA_DIR": str(tmp_path)})
    assert settings.embedded
    identity = settings.section(IdentitySettings)
    assert identity.sign_in_failures_per_account == (10, 900)
    assert identity.sign_in_failures_per_address == (100, 900)
    assert identity.access_token_seconds == 900
    assert identity.base_domains == ("localhost",)
    assert settings.platform.max_body_bytes == 1048576
    assert settings.platform.metrics_token is None
    assert settings.section(JobsSettings).worker_queues == (
        ("urgent", 4),
        ("default", 4),
        ("bulk", 2),
    )
    assert settings.section(CatalogSettings).erp_url is None
    secret = (tmp_path / "secret-key").read_text().strip().encode()
    assert settings.secret_key == secret
    assert len(secret) >= 32
    # generated once, then reused
    assert Settings.from_env({"IMPEXTECH_DATA_DIR": str(tmp_path)}).secret_key == secret


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IMPEXTECH_PORT", "eighty", "must be an integer"),
        ("IMPEXTECH_PORT", "70000", "between 0 and 65535"),
        ("IMPEXTECH_SIGN_IN_FAILURES_PER_ACCOUNT", "ten", "must look like 10/900"),
        ("IMPEXTECH_AUTH_RATE_LIMIT", "10/900", "was replaced by IMPEXTECH_SIGN_IN_FAILURES_PER"),
        ("IMPEXTECH_SIGN_UPS_PER_ADDRESS", "10/100000", "at most 86400 seconds"),
        ("IMPEXTECH_METRICS_TOKEN", "short", "16\\+ printable characters"),
        ("IMPEXTECH_MAIL_URL", "ftp://mail.example", "file:///dir or smtp"),
        ("IMPEXTECH_MAIL_URL", "smtp://", "file:///dir or smtp"),
        ("IMPEXTECH_PASSWORD_RESET_URL", "javascript:alert(1)", "must be an http\\(s\\) URL"),
        ("IMPEXTECH_TENANT_CACHE_SECONDS", "-1", "between 0 and 300"),
        ("IMPEXTECH_SESSION_DAYS", "0", "between 1 and 365"),
        ("IMPEXTECH_ACCESS_TOKEN_SECONDS", "3600", "between 1 and 900"),
        ("IMPEXTECH_SECRET_KEY", "short", "at least 32 bytes"),
        ("IMPEXTECH_APP_DB_ROLE", "app; drop table", "not a plain role name"),
        ("IMPEXTECH_LOG_FORMAT", "xml", "auto, json or console"),
    ],
)
def test_bad_settings_fail_with_one_clear_message(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"IMPEXTECH_DATA_DIR": str(tmp_path), name: value})


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    missing = [s.env for s in all_settings() if f"`{s.env}`" not in readme]
    assert missing == []
