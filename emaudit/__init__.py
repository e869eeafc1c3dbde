"""emaudit: measure emergent misalignment honestly.

The core package holds what the components share: settings, the SQLModel store and the CLI. Its
public names load on first use, so that ``emaudit --help`` does not import pandas.

* settings: :class:`Settings`, :func:`get_settings`;
* store: :func:`make_engine`, :func:`migrate`, :func:`open_store`, :func:`write_session`;
* labels: :func:`em_label`, :class:`EmLabel`, :func:`judge_stratum`, :class:`JudgeStratum`;
* data in and out: :func:`import_questions`, :func:`import_responses`, :func:`export_responses`;
* raw judge rates: :func:`cell_rates`, :class:`CellRate`;
* errors: :class:`EmauditError`, :class:`InputError`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Settings": "emaudit.settings",
    "get_settings": "emaudit.settings",
    "make_engine": "emaudit.store",
    "migrate": "emaudit.store",
    "open_store": "emaudit.store",
    "write_session": "emaudit.store",
    "em_label": "emaudit.labels",
    "EmLabel": "emaudit.labels",
    "judge_stratum": "emaudit.labels",
    "JudgeStratum": "emaudit.labels",
    "import_questions": "emaudit.questions",
    "import_responses": "emaudit.importing",
    "export_responses": "emaudit.exporting",
    "cell_rates": "emaudit.rates",
    "CellRate": "emaudit.rates",
    "EmauditError": "emaudit.errors",
    "InputError": "emaudit.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'emaudit' has no attribute {name!r}")
