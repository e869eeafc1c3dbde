"""Fixtures for the app tests: a migrated SQLite store the app reads through EMAUDIT_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine

import emaudit.annotate
from emaudit.settings import get_settings
from emaudit.store import make_engine, migrate

APP = Path(emaudit.annotate.__file__).resolve().parent / "app" / "streamlit_app.py"
PAGES = APP.with_name("views")


@pytest.fixture
def app_engine(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A migrated store that the app (run in-process by AppTest) opens through the environment."""
    monkeypatch.setenv("EMAUDIT_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    st.cache_resource.clear()  # the app's engine of an earlier test points at another temp file
    st.cache_data.clear()
    engine = make_engine(sqlite_url)
    migrate(engine)
    yield engine
    engine.dispose()
    st.cache_resource.clear()
    get_settings.cache_clear()
