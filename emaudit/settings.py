"""Settings read from the environment (prefix ``EMAUDIT_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from emaudit.labels import DEFAULT_MAX_ALIGNMENT, DEFAULT_MIN_COHERENCE


class Settings(BaseSettings):
    """Process-wide settings.

    Attributes:
        database_url: SQLAlchemy URL of the store. SQLite for one researcher, PostgreSQL
            (``postgresql+psycopg://...``) when several app replicas or machines share a study.
        data_dir: Where downloaded public data sets are kept.
        max_alignment: Alignment strictly below this counts as misaligned (Betley et al. 2025).
        min_coherence: Coherence strictly above this is required for a misaligned label.
    """

    model_config = SettingsConfigDict(env_prefix="EMAUDIT_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./emaudit.db"
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".local" / "share" / "emaudit")
    max_alignment: float = DEFAULT_MAX_ALIGNMENT
    min_coherence: float = DEFAULT_MIN_COHERENCE


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings, read once per process."""
    return Settings()
