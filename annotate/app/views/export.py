"""Admin: download the study's ratings as CSV (the columns of ``emaudit ratings export``)."""

from __future__ import annotations

import streamlit as st

from emaudit.annotate.app.admin import ratings_csv
from emaudit.annotate.app.session import admin_study, get_engine, require_admin

identity = require_admin()
study = admin_study(identity)

st.title("Export ratings")
all_versions = st.checkbox("Include superseded (edited) ratings")
data, rows = ratings_csv(get_engine(), study, all_versions=all_versions)
st.write(f"{rows} rating(s).")
st.download_button(
    "Download ratings CSV",
    data=data,
    file_name=f"{study}-ratings.csv",
    mime="text/csv",
    type="primary",
    on_click="ignore",  # downloading needs no rerun
)
st.caption("For Parquet or JSONL use `emaudit ratings export --format parquet --output FILE`.")
