"""Admin: the study's design (N, n, inclusion probability per stratum), its pace, and its raters."""

from __future__ import annotations

import streamlit as st

from emaudit.annotate.app.admin import design_table, format_eta, progress_tables, set_rater_active
from emaudit.annotate.app.session import admin_study, get_engine, require_admin
from emaudit.annotate.queue import release_expired
from emaudit.errors import EmauditError
from emaudit.store import write_session

identity = require_admin()  # before anything is read: the server-side check
study = admin_study(identity)
engine = get_engine()

st.title(f"Study {study}")
settings, strata = design_table(engine, study)
counts, raters = progress_tables(engine, study)

columns = st.columns(5)
columns[0].metric("Ratings", f"{counts['ratings']} / {counts['ratings needed']}")
columns[1].metric("Items complete", f"{counts['items complete']} / {counts['items']}")
columns[2].metric("Live claims", counts["live claims"])
columns[3].metric("Ratings per hour", f"{counts['ratings per hour']:.0f}", help="Over the last hour.")
columns[4].metric("Time left at this pace", format_eta(counts["eta"]))
st.progress(min(counts["ratings"] / max(counts["ratings needed"], 1), 1.0))
st.caption(f"Skips: {counts['skips']} · expired claims: {counts['expired claims']}")

st.subheader("Design")
st.caption("Inclusion probability = n / N per stratum; gold items are not part of the estimate.")
st.dataframe(
    strata,
    hide_index=True,
    width="stretch",
    column_config={
        "stratum": st.column_config.TextColumn(width="large"),  # full names: cell values included
        "inclusion probability": st.column_config.NumberColumn(format="%.4g"),
    },
)
with st.expander("Study settings"):
    st.json(settings)

st.subheader("Raters")
st.dataframe(
    raters.drop(columns=["id"]),
    hide_index=True,
    width="stretch",
    column_config={
        "gold accuracy": st.column_config.NumberColumn(format="percent"),
        "median seconds": st.column_config.NumberColumn(format="%.1f"),
    },
)
others = raters[raters["id"] != identity.rater_id]
if not others.empty:
    with st.form("rater_access"):
        st.write(
            "Deactivate a rater (their link stops working at once, their claims go back to the pool) "
            "or reactivate one (with a new link)."
        )
        choice = st.selectbox(
            "Rater",
            others["id"].tolist(),
            format_func=lambda rater_id: (
                f"{others.loc[others['id'] == rater_id, 'rater'].iloc[0]}"
                + ("" if others.loc[others["id"] == rater_id, "active"].iloc[0] else " (deactivated)")
            ),
        )
        left, right = st.columns(2)
        deactivate = left.form_submit_button("Deactivate and revoke link")
        reactivate = right.form_submit_button("Reactivate with a new link")
    if deactivate or reactivate:
        try:
            link = set_rater_active(engine, identity, int(choice), active=bool(reactivate))
        except EmauditError as error:
            st.error(str(error))
        else:
            if link:
                st.success("Reactivated. Their new link (shown once):")
                st.code(link, language=None)
            else:
                st.success("Deactivated: the link no longer works.")

if st.button("Release expired claims now", help="Claims are also released automatically as raters work."):
    with write_session(engine) as session:
        released = release_expired(session, study)
    st.success(f"Released {released} expired claim(s).")
