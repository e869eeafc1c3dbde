"""The rating app's entry point and only router (DESIGN §6): ``streamlit run streamlit_app.py``.

Who may see which page is decided here and again inside every admin page (the router hides admin
pages from raters; the pages refuse non-admins themselves). Start it with ``emaudit app``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from emaudit.annotate.app.session import current_identity
from emaudit.errors import EmauditError

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="emaudit rating", page_icon=":material/rate_review:", layout="centered")

try:
    identity = current_identity()
except EmauditError as error:  # the database is missing or at an older schema: the operator's problem
    st.error(f"The rating app cannot open its database: {error}")
    st.stop()

if identity is None:
    page = st.navigation(
        [st.Page(VIEWS / "invalid.py", title="Link not valid", default=True)], position="hidden"
    )
elif identity.is_admin:
    # Admins land on the overview, in a wide layout: opening the app must not lease them an item
    # (only the rating page claims), and admin tables need the width.
    st.set_page_config(layout="wide")
    page = st.navigation(
        {
            "Admin": [
                st.Page(
                    VIEWS / "admin_overview.py",
                    title="Study overview",
                    icon=":material/table:",
                    default=True,
                ),
                st.Page(VIEWS / "admin_agreement.py", title="Live agreement", icon=":material/insights:"),
                st.Page(VIEWS / "adjudicate.py", title="Adjudication queue", icon=":material/gavel:"),
                st.Page(VIEWS / "export.py", title="Export", icon=":material/download:"),
            ],
            "Rating": [st.Page(VIEWS / "rate.py", title="Rate answers", icon=":material/edit:")],
        }
    )
else:
    # Raters get one page and no sidebar: nothing hints that admin pages exist.
    page = st.navigation([st.Page(VIEWS / "rate.py", title="Rate answers", default=True)], position="hidden")
page.run()
