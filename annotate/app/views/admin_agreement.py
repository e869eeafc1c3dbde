"""Admin: live agreement and corrected rates, computed by ``emaudit.calibration`` on current ratings.

The document is cached for a short time so that several admins (or reruns) do not recompute it on
every widget change; a refresh button clears it.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from sqlalchemy import Engine

from emaudit.annotate.app.admin import agreement_rows, calibration_document, label_outcomes, rates_rows
from emaudit.annotate.app.session import admin_study, get_engine, require_admin
from emaudit.calibration.errors import CalibrationInputError
from emaudit.errors import EmauditError

CACHE_SECONDS = 30


@st.cache_data(ttl=CACHE_SECONDS, show_spinner="Computing agreement…")
def _document(_engine: Engine, database_url: str, study: str, n_boot: int) -> dict[str, Any]:
    # The engine is not hashable (leading underscore: not part of the key); the URL stands for it.
    return calibration_document(_engine, study, n_boot=n_boot)


identity = require_admin()
study = admin_study(identity)
engine = get_engine()

st.title("Live agreement")
intervals = st.toggle(
    "Bootstrap intervals for Krippendorff's alpha (2000 resamples; slower)",
    value=False,
    help="Off: point estimates only, fast enough to refresh while raters work.",
)
if st.button("Refresh now"):
    _document.clear()
try:
    document = _document(
        engine, engine.url.render_as_string(hide_password=True), study, 2000 if intervals else 0
    )
except (EmauditError, CalibrationInputError) as error:
    st.warning(f"Agreement cannot be computed yet: {error}")
    st.stop()
st.caption(f"Recomputed at most every {CACHE_SECONDS} s.")

labels = document["human_labels"]
outcomes = label_outcomes(engine, study)
columns = st.columns(4)
columns[0].metric("Items with a human label", labels["n_decided"])
columns[1].metric("Can't tell", outcomes.get("cant_tell", 0), help='Only "can\'t tell" votes.')
columns[2].metric("Tie", outcomes.get("tie", 0), help="Decisive votes split evenly: adjudicate these.")
columns[3].metric("Adjudicated", labels["n_adjudicated"])

st.subheader("Agreement")
st.dataframe(agreement_rows(document), hide_index=True)
st.caption(document["agreement"]["caveat"])

st.subheader("Judge EM rate and corrected EM rate")
st.dataframe(rates_rows(document), hide_index=True, width="stretch")
