"""One secret key for the server and its commands (consult.core.secrets)."""

from __future__ import annotations

import csv
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from config import DEFAULT_SECRET_KEY, DevelopmentConfig, ProductionConfig
from consult import create_app
from consult.accounts import service as accounts
from consult.core import secrets as secret_keys
from tests import live


def _config(base: type, instance: Path, key: str) -> type:
    return type("Config", (base,), {"INSTANCE_DIR": str(instance), "SECRET_KEY": key,
                                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/db.sqlite"})


def test_development_makes_the_instance_key_once_and_every_process_reads_it(tmp_path):
    first = create_app(_config(DevelopmentConfig, tmp_path, DEFAULT_SECRET_KEY))
    key = first.config["SECRET_KEY"]
    assert key != DEFAULT_SECRET_KEY and len(key) >= 32
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    second = create_app(_config(DevelopmentConfig, tmp_path, DEFAULT_SECRET_KEY))
    assert second.config["SECRET_KEY"] == key
    # A key given in the environment wins over the file.
    chosen = secrets.token_hex(32)
    assert create_app(_config(DevelopmentConfig, tmp_path, chosen)).config["SECRET_KEY"] == chosen


def test_a_key_file_made_by_another_process_meanwhile_is_kept(tmp_path):
    (tmp_path / "secret_key").write_text("k" * 40 + "\n")
    assert secret_keys.make_key_file(tmp_path) == "k" * 40
    assert [p.name for p in tmp_path.iterdir()] == ["secret_key"]  # no temporary file left


def test_production_reads_the_instance_key_but_never_makes_one(tmp_path):
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(_config(ProductionConfig, tmp_path, DEFAULT_SECRET_KEY))
    assert not (tmp_path / "secret_key").exists()
    (tmp_path / "secret_key").write_text("short\n")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(_config(ProductionConfig, tmp_path, DEFAULT_SECRET_KEY))
    key = secrets.token_hex(32)
    (tmp_path / "secret_key").write_text(key + "\n")
    assert create_app(_config(ProductionConfig, tmp_path, DEFAULT_SECRET_KEY)).config[
        "SECRET_KEY"] == key


@pytest.fixture
def placeholder_key(app, monkeypatch):
    """The app as it would run outside the tests with nothing but the public placeholder."""
    monkeypatch.setitem(app.config, "SECRET_KEY", DEFAULT_SECRET_KEY)
    monkeypatch.setattr(app, "testing", False)
    return app


def test_no_code_is_issued_or_checked_with_the_placeholder(placeholder_key, compound):
    household = compound.buildings[0].households[0]
    with pytest.raises(accounts.NoSecretKey):
        accounts.issue_access_code(None, household)
    with pytest.raises(accounts.NoSecretKey):
        accounts.redeem_access_code("1234 5678 9012")


def test_the_command_refuses_the_placeholder_and_writes_nothing(placeholder_key, runner,
                                                                  compound, tmp_path):
    out = tmp_path / "codes.csv"
    result = runner.invoke(args=["accounts", "issue-access-codes", "--compound", compound.name,
                                 "-o", str(out)])
    assert result.exit_code == 1
    assert "no secret key" in result.output and "Traceback" not in result.output
    assert not out.exists()


_COMPOUND = """
from consult.registry import service as registry
community = registry.create_community(None, "钥匙社区")
building = registry.create_building(None, registry.create_compound(None, community, "钥匙小区"),
                                    "1号楼")
for room in ("101", "102", "201"):
    registry.create_household(None, building, registry.household_data(
        unit="1", floor=room[0], room=room, area="60", owner_name="业主", owner_key=None,
        phone=None))
db.session.commit()
"""


@pytest.mark.parametrize("server_given_the_file", [True, False])
def test_codes_issued_by_the_command_sign_in_on_the_served_app(tmp_path, database_url,
                                                                server_given_the_file):
    """As a new user would: the demo's server, and a command beside it without SECRET_KEY in
    its environment, hash codes with one key: instance/secret_key (whether the server was
    handed the file's key in SECRET_KEY or read the file itself)."""
    url, drop = live.fresh_database(database_url, tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env.update({"DATABASE_URL": url, "CONSULT_CONFIG": "development",
                "CONSULT_INSTANCE_DIR": str(tmp_path), "UPLOAD_PATH": str(tmp_path / "up"),
                "CONSULT_LANG": "en"})
    flask = [str(live.VENV_BIN / "flask"), "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], env=env, cwd=live.ROOT, check=True,
                   capture_output=True, timeout=300)
    server_env = dict(env)
    if server_given_the_file:
        key = secrets.token_hex(32)
        (tmp_path / "secret_key").write_text(key + "\n")
        server_env["SECRET_KEY"] = key
    server = live.serve(server_env, workers=2)
    server.env = env  # the commands below run without SECRET_KEY
    try:
        server.python(_COMPOUND)
        issued = server.flask("accounts", "issue-access-codes", "--compound", "钥匙小区", "-o",
                              str(tmp_path / "codes.csv"))
        assert issued.returncode == 0, issued.stderr
        rows = list(csv.reader((tmp_path / "codes.csv").read_text("utf-8-sig").splitlines()))
        assert len(rows) == 1 + 3
        browser = live.Browser(server.url)
        page = browser.get("/code")
        reply = browser.post("/code", {"csrf_token": browser.csrf(page.text),
                                       "code": rows[1][3]})
        assert reply.status == 302 and reply.location.endswith("/welcome"), reply.text[:500]
    finally:
        server.stop()
        drop()
