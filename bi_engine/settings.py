"""Configuration from the environment (CONTRACT section 3).

Settings are built once by the composition roots (CLI, ``create_app``, the worker) and
passed down explicitly; nothing reads the environment at import time.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bi_engine import constants
from bi_engine.errors import ConfigurationError

CommaList = Annotated[tuple[str, ...], NoDecode]
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable (and still accept the field name)."""
    return AliasChoices(name, name.lower())


class Settings(BaseSettings):
    """Every variable of CONTRACT section 3, plus a few operational knobs with safe defaults."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, frozen=True
    )

    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    db_schema: str = Field(constants.DEFAULT_SCHEMA, validation_alias=_env("BI_DB_SCHEMA"))
    environment: Literal["development", "production"] = Field(
        "development", validation_alias=_env("ENVIRONMENT")
    )
    jwt_secret: str = Field(
        constants.DEV_JWT_SECRET, validation_alias=_env("JWT_SECRET"), repr=False
    )
    jwt_issuer: str = Field("pilotpros-backend", validation_alias=_env("JWT_ISSUER"))
    jwt_audience: CommaList = Field(
        ("pilotpros-frontend", "pilotpros-bi"), validation_alias=_env("JWT_AUDIENCE")
    )
    llm_chain: CommaList | None = Field(None, validation_alias=_env("BI_LLM_CHAIN"))
    openai_api_key: str | None = Field(None, validation_alias=_env("OPENAI_API_KEY"), repr=False)
    anthropic_api_key: str | None = Field(
        None, validation_alias=_env("ANTHROPIC_API_KEY"), repr=False
    )
    ollama_host: str | None = Field(None, validation_alias=_env("OLLAMA_HOST"))
    llm_monthly_budget_eur: float | None = Field(
        None, ge=0, validation_alias=_env("BI_LLM_MONTHLY_BUDGET_EUR")
    )
    llm_timeout_s: float = Field(60.0, gt=0, validation_alias=_env("BI_LLM_TIMEOUT_S"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    callback_secret: str | None = Field(
        None, validation_alias=_env("BI_CALLBACK_SECRET"), repr=False
    )
    callback_allowed_hosts: CommaList = Field(
        (), validation_alias=_env("BI_CALLBACK_ALLOWED_HOSTS")
    )
    max_body_bytes: int = Field(
        constants.DEFAULT_MAX_BODY_BYTES, gt=0, validation_alias=_env("BI_MAX_BODY_BYTES")
    )
    job_timeout_s: float = Field(
        constants.DEFAULT_JOB_TIMEOUT_S, gt=0, validation_alias=_env("BI_JOB_TIMEOUT_S")
    )
    worker_concurrency: int = Field(4, ge=1, le=256, validation_alias=_env("BI_WORKER_CONCURRENCY"))
    worker_metrics_port: int | None = Field(
        None, ge=0, le=65535, validation_alias=_env("BI_WORKER_METRICS_PORT")
    )
    stalled_after_s: float = Field(60.0, gt=0, validation_alias=_env("BI_STALLED_AFTER_S"))
    starvation_after_s: float = Field(300.0, gt=0, validation_alias=_env("BI_STARVATION_AFTER_S"))
    job_retention_days: int = Field(7, ge=1, validation_alias=_env("BI_JOB_RETENTION_DAYS"))
    result_retention_days: int = Field(365, ge=1, validation_alias=_env("BI_RESULT_RETENTION_DAYS"))
    cors_origins: CommaList = Field((), validation_alias=_env("BI_CORS_ORIGINS"))
    trusted_proxies: CommaList = Field((), validation_alias=_env("BI_TRUSTED_PROXIES"))
    rate_limits: bool = Field(True, validation_alias=_env("BI_RATE_LIMITS"))
    """Per-user limits of CONTRACT section 11; ``false`` only for single-user load tests."""
    log_level: str = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    log_format: Literal["json", "console"] | None = Field(None, validation_alias=_env("LOG_FORMAT"))

    @field_validator(
        "jwt_audience",
        "llm_chain",
        "callback_allowed_hosts",
        "cors_origins",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError("BI_DB_SCHEMA must be a lower-case SQL identifier, e.g. 'bi'")
        return value

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _production_needs_a_secret(self) -> Settings:
        if self.environment == "production" and self.jwt_secret in ("", constants.DEV_JWT_SECRET):
            raise ConfigurationError(
                "ENVIRONMENT=production needs JWT_SECRET: set it to the secret the "
                "PilotProOS backend signs its tokens with (not the development default)."
            )
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def effective_log_format(self) -> str:
        """JSON in production, console in development, unless LOG_FORMAT says otherwise."""
        return self.log_format or ("json" if self.is_production else "console")

    @property
    def effective_llm_chain(self) -> tuple[str, ...]:
        """BI_LLM_CHAIN, or one built from the keys present; always ends with ``pattern``."""
        chain = list(self.llm_chain or self._chain_from_keys())
        if not chain or chain[-1] != "pattern":
            chain = [p for p in chain if p != "pattern"] + ["pattern"]
        return tuple(chain)

    def _chain_from_keys(self) -> list[str]:
        chain = []
        if self.openai_api_key:
            chain.append("openai/gpt-4o-mini")
        if self.anthropic_api_key:
            chain.append("anthropic/claude-3-5-haiku-latest")
        if self.ollama_host:
            chain.append("ollama/llama3.1")
        return chain

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigurationError(
                "DATABASE_URL is not set: point it at PostgreSQL, e.g. "
                "postgresql://postgres@127.0.0.1:5432/postgres"
            )
        return self.database_url


def load_settings(**overrides: Any) -> Settings:
    """Read the environment; keyword overrides win (used by the CLI flags and tests)."""
    try:
        return Settings(**overrides)
    except ConfigurationError:
        raise
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise ConfigurationError(f"invalid configuration: {exc}") from exc
