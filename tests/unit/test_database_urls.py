from __future__ import annotations

from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from impextech.platform.database import DatabaseSetupError, app_conninfo_from_owner, resolve
from impextech.platform.settings import Settings


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"IMPEXTECH_DATA_DIR": str(tmp_path), **env})


@pytest.mark.parametrize(
    "owner",
    [
        "postgresql://owner:pw@db1:5432,db2:5433/shop?target_session_attrs=read-write",
        "host=db1,db2 port=5432,5433 dbname=shop user=owner password=pw"
        " target_session_attrs=read-write",
    ],
)
def test_multi_host_urls_keep_every_host_and_swap_only_the_credentials(
    tmp_path: Path, owner: str
) -> None:
    settings = _settings(tmp_path, IMPEXTECH_APP_DB_PASSWORD="app-secret")
    app = conninfo_to_dict(app_conninfo_from_owner(owner, settings.platform))
    assert app == {
        "host": "db1,db2",
        "port": "5432,5433",
        "dbname": "shop",
        "user": "impextech_app",
        "password": "app-secret",
        "target_session_attrs": "read-write",
    }


def test_an_explicit_app_url_wins(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        DATABASE_URL="host=db1 dbname=shop user=owner",
        IMPEXTECH_APP_DATABASE_URL="host=db9 dbname=shop user=reader",
    )
    infos = resolve(settings)
    assert (infos.owner, infos.app) == (
        "host=db1 dbname=shop user=owner",
        "host=db9 dbname=shop user=reader",
    )


def test_a_malformed_database_url_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseSetupError, match="DATABASE_URL is not a valid connection string"):
        resolve(_settings(tmp_path, DATABASE_URL="host=db1 = = broken"))
