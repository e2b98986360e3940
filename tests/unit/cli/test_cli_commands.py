"""The casebridge command line against a real SQLite store."""

from typer.testing import CliRunner

from gateway.cli import app
from gateway.partners import hash_api_key
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.models import Partner

runner = CliRunner()


def test_db_upgrade_then_partner_add_stores_only_the_key_hash(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CASEBRIDGE_DATABASE_URL", url)
    from gateway.settings import get_settings
    get_settings.cache_clear()
    try:
        assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
        added = runner.invoke(app, ["partners", "add", "primero-ssd", "--name", "Primero South",
                                    "--system", "primero"])
        assert added.exit_code == 0, added.output
        key = added.output.strip()
        assert key.startswith("cbk_") and len(key) > 40
        with make_sessionmaker(make_engine(url))() as session:
            stored = session.get(Partner, "primero-ssd")
        assert stored is not None and stored.api_key_hash == hash_api_key(key)
        assert key not in (stored.api_key_hash or "")
        again = runner.invoke(app, ["partners", "add", "primero-ssd", "--name", "x",
                                    "--system", "primero"])
        assert again.exit_code == 1
        listed = runner.invoke(app, ["partners", "list"])
        assert "primero-ssd\tprimero\tactive\tAPI" in listed.output
        connected = runner.invoke(app, ["partners", "connect", "primero-ssd", "--base-url",
                                        "http://127.0.0.1:9101", "--credential", "user=casebridge",
                                        "--credential", "password=sandbox-passw0rd"])
        assert connected.exit_code == 0, connected.output
        with make_sessionmaker(make_engine(url))() as session:
            assert session.get(Partner, "primero-ssd").connection == {
                "base_url": "http://127.0.0.1:9101",
                "credentials": {"user": "casebridge", "password": "sandbox-passw0rd"}}
        bad = runner.invoke(app, ["partners", "connect", "primero-ssd", "--base-url", "http://x",
                                  "--credential", "novalue"])
        assert bad.exit_code != 0
        short = runner.invoke(app, ["partners", "add", "p2", "--name", "x", "--system", "other",
                                    "--api-key", "short"])
        assert short.exit_code != 0
    finally:
        get_settings.cache_clear()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "db", "partners", "agreements", "keys", "audit", "users",
                    "purge", "scheduler"):
        assert command in result.output


def test_gateway_processes_refuse_to_start_without_an_encryption_key(cli) -> None:
    for command in (["serve"], ["relay"], ["worker"], ["poll", "--once"], ["purge"],
                    ["scheduler", "--once"]):
        result = cli(*command, keys="", key_file="")
        assert result.exit_code == 2, (command, result.output)
        assert result.output.startswith("error: no encryption key: set CASEBRIDGE_KEY_FILE")
        assert "Traceback" not in result.output


def test_the_demo_refuses_a_story_it_does_not_have_before_starting_anything() -> None:
    answer = runner.invoke(app, ["demo", "--story", "2", "--story", "9"])
    assert answer.exit_code == 2
    assert "no story 9: choose 1 to 6" in answer.output
