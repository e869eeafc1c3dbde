"""Admin: the study's design (N, n, inclusion probability per stratum) and progress per rater."""

from __future__ import annotations

import streamlit as st

from emaudit.annotate.app.admin import design_table, progress_tables
from emaudit.annotate.app.session import admin_study, get_engine, require_admin
from emaudit.annotate.queue import release_expired
from emaudit.store import write_session

identity = require_admin()  # before anything is read: the server-side check
study = admin_study(identity)
engine = get_engine()

st.title(f"Study {study}")
settings, strata = design_table(engine, study)
counts, raters = progress_tables(engine, study)

columns = st.columns(3)
columns[0].metric("Ratings", f"{counts['ratings']} / {counts['ratings needed']}")
columns[1].metric("Items complete", f"{counts['items complete']} / {counts['items']}")
columns[2].metric("Live claims", counts["live claims"])
st.progress(min(counts["ratings"] / max(counts["ratings needed"], 1), 1.0))

st.subheader("Design")
st.caption("Inclusion probability = n / N per stratum; gold items are not part of the estimate.")
st.dataframe(
    strata,
    hide_index=True,
    column_config={"inclusion probability": st.column_config.NumberColumn(format="%.4g")},
)
with st.expander("Study settings"):
    st.json(settings)

st.subheader("Raters")
st.dataframe(
    raters,
    hide_index=True,
    column_config={
        "gold accuracy": st.column_config.NumberColumn(format="percent"),
        "median seconds": st.column_config.NumberColumn(format="%.1f"),
    },
)

if st.button("Release expired claims now", help="Claims are also released automatically as raters work."):
    with write_session(engine) as session:
        released = release_expired(session, study)
    st.success(f"Released {released} expired claim(s).")
