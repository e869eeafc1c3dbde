"""Shown for a missing, unknown or malformed link (no hint about which studies or tokens exist)."""

from __future__ import annotations

from emaudit.annotate.app.session import invalid_link

invalid_link()
