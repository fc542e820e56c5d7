"""Settings: every contract variable, and production refusing development defaults."""

from __future__ import annotations

import pytest

from bi_engine import constants
from bi_engine.errors import ConfigurationError
from bi_engine.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_production_without_secret_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ConfigurationError, match="JWT_SECRET"):
        load_settings()


def test_production_with_development_secret_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", constants.DEV_JWT_SECRET)
    with pytest.raises(ConfigurationError, match="development default"):
        load_settings()


def test_production_with_real_secret_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET", "s" * 48)
    settings = load_settings()
    assert settings.is_production
    assert settings.effective_log_format == "json"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "DATABASE_URL": "postgresql://u@h/db",
        "BI_DB_SCHEMA": "analytics",
        "JWT_ISSUER": "me",
        "JWT_AUDIENCE": "a, b ,c",
        "BI_LLM_CHAIN": "openai/gpt-4o-mini,ollama/llama3.1",
        "BI_MAX_BODY_BYTES": "2048",
        "BI_JOB_TIMEOUT_S": "30",
        "BI_WORKER_CONCURRENCY": "8",
        "BI_WORKER_METRICS_PORT": "9100",
        "BI_CORS_ORIGINS": "http://localhost:5173",
        "BI_CALLBACK_ALLOWED_HOSTS": "backend-dev",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "json",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.database_url == "postgresql://u@h/db"
    assert settings.db_schema == "analytics"
    assert settings.jwt_audience == ("a", "b", "c")
    assert settings.effective_llm_chain == ("openai/gpt-4o-mini", "ollama/llama3.1", "pattern")
    assert settings.max_body_bytes == 2048
    assert settings.job_timeout_s == 30
    assert settings.worker_concurrency == 8
    assert settings.worker_metrics_port == 9100
    assert settings.cors_origins == ("http://localhost:5173",)
    assert settings.callback_allowed_hosts == ("backend-dev",)
    assert settings.log_level == "DEBUG"
    assert settings.effective_log_format == "json"


def test_defaults_match_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("BI_DB_SCHEMA", "JWT_ISSUER", "JWT_AUDIENCE", "BI_MAX_BODY_BYTES", "ENVIRONMENT"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings()
    assert settings.db_schema == "bi"
    assert settings.jwt_issuer == "pilotpros-backend"
    assert settings.jwt_audience == ("pilotpros-frontend", "pilotpros-bi")
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.effective_log_format == "console"


def test_chain_is_built_from_keys_and_ends_with_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BI_LLM_CHAIN", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OLLAMA_HOST", "http://ollama:11434")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    chain = load_settings().effective_llm_chain
    assert chain == ("openai/gpt-4o-mini", "ollama/llama3.1", "pattern")


def test_pattern_is_moved_to_the_end() -> None:
    settings = Settings(llm_chain="pattern,openai/gpt-4o-mini")
    assert settings.effective_llm_chain == ("openai/gpt-4o-mini", "pattern")


@pytest.mark.parametrize("schema", ["Bi", "bi;drop", "1bi", ""])
def test_schema_must_be_an_identifier(schema: str) -> None:
    with pytest.raises(ConfigurationError, match="BI_DB_SCHEMA"):
        load_settings(db_schema=schema)


def test_secrets_are_not_in_repr() -> None:
    settings = Settings(jwt_secret="x" * 40, openai_api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(settings)
    assert "x" * 40 not in repr(settings)
