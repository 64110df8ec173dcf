"""Settings from the environment: bad values stop the cold start by name; the log level reaches the loggers."""

from __future__ import annotations

import pytest

from chalicelib.logs import service_logger
from chalicelib.settings import get_settings, load_settings


@pytest.fixture()
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize("raw", ["verbose", "INFOO", "10"])
def test_an_unknown_log_level_fails_the_cold_start_naming_the_variable(monkeypatch, raw):
    # Given
    monkeypatch.setenv("FASTHOOK_LOG_LEVEL", raw)
    # When / Then
    with pytest.raises(RuntimeError, match="FASTHOOK_LOG_LEVEL") as failure:
        load_settings()
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in str(failure.value)


def test_a_log_level_is_read_in_any_case(monkeypatch):
    monkeypatch.setenv("FASTHOOK_LOG_LEVEL", " warning ")
    assert load_settings().log_level == "WARNING"


def test_the_stage_log_level_silences_info_lines_of_service_and_module_loggers(monkeypatch, fresh_settings, capsys):
    # Given the prod stage's level
    monkeypatch.setenv("FASTHOOK_LOG_LEVEL", "WARNING")
    parent = service_logger("fasthook-settings-test")
    child = service_logger("fasthook-settings-test", child=True)
    # When each logs a routine line and a warning
    parent.info("routine from the entry point")
    child.info("routine from a module")
    parent.warning("needs an operator")
    child.warning("needs an operator too")
    # Then only the warnings are written
    out = capsys.readouterr().out
    assert "routine" not in out
    assert "needs an operator" in out and "needs an operator too" in out


def test_by_default_every_webhook_step_is_logged_at_info(monkeypatch, fresh_settings, capsys):
    monkeypatch.delenv("FASTHOOK_LOG_LEVEL", raising=False)
    service_logger("fasthook-settings-default").info("ingested")
    assert '"message":"ingested"' in capsys.readouterr().out
