"""Streamlit glue shared by the router and the pages: the engine, who is signed in, inert text.

Kept thin on purpose: decisions live in :mod:`emaudit.annotate.app.state` and
:mod:`emaudit.annotate.app.admin`; this module only connects them to ``st.session_state``,
``st.query_params`` and ``st.cache_resource``.
"""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from emaudit.annotate.app.admin import admin_studies
from emaudit.annotate.app.render import text_box, whitespace_note
from emaudit.annotate.app.state import Identity, identity_params, refresh_identity, resolve_identity
from emaudit.settings import get_settings
from emaudit.store import open_store

_IDENTITY = "_emaudit_identity"
_IDENTITY_KEY = "_emaudit_identity_params"
_ADMIN_STUDY = "_emaudit_admin_study"


@st.cache_resource(show_spinner=False)
def engine_for(database_url: str) -> Engine:
    """The one engine (connection pool) per database URL and server process.

    Raises:
        EmauditError: the database is missing or at an older schema (``emaudit init`` fixes it).
    """
    return open_store(database_url)


def get_engine() -> Engine:
    """The engine for ``EMAUDIT_DATABASE_URL`` (read through the settings)."""
    return engine_for(get_settings().database_url)


def current_identity() -> Identity | None:
    """Who this browser session is, checked against the database on every render.

    The link's parameters are resolved once per session (a crowd link creates its rater then) and
    remembered server-side. Switching pages drops the query string, so the link's parameters are
    put back into the URL on every render: a reload or a bookmark of any page keeps the identity.
    A session that opens a different link is re-resolved from that link. The role is re-read
    every time, so admin rights are never taken from a stale copy.
    """
    engine = get_engine()
    params = identity_params({name: st.query_params.get(name) for name in st.query_params})
    key = tuple(sorted(params.items()))
    if key and st.session_state.get(_IDENTITY_KEY) != key:
        st.session_state[_IDENTITY_KEY] = key
        st.session_state[_IDENTITY] = resolve_identity(engine, params)
    elif not key and st.session_state.get(_IDENTITY_KEY):
        st.query_params.update(dict(st.session_state[_IDENTITY_KEY]))
    identity: Identity | None = st.session_state.get(_IDENTITY)
    if identity is None:
        return None
    fresh = refresh_identity(engine, identity)
    st.session_state[_IDENTITY] = fresh
    return fresh


def require_identity() -> Identity:
    """The signed-in identity, or stop the page with the invalid-link message."""
    identity = current_identity()
    if identity is None:
        invalid_link()
        st.stop()
    assert identity is not None  # st.stop() raises; this tells the type checker
    return identity


def require_admin() -> Identity:
    """The signed-in admin; anyone else is stopped here, whatever page they asked for.

    Every admin page calls this first: hiding the navigation is not access control, since a page
    can be requested by its URL path or by a crafted page switch.
    """
    identity = current_identity()
    if identity is None or not identity.is_admin:
        st.error("This page is for study admins only.")
        st.stop()
    assert identity is not None
    return identity


def invalid_link() -> None:
    """The page for a missing or unknown link: deliberately says nothing about studies or tokens."""
    st.title("This link is not valid")
    st.write("Please check that you opened the complete link you were given, or ask the person who sent it.")


def admin_study(identity: Identity) -> str:
    """The study an admin page works on (a sidebar choice remembered across admin pages).

    The default is the study in progress (:func:`~emaudit.annotate.app.admin.admin_studies` lists it
    first).
    """
    names = admin_studies(get_engine(), identity)
    if not names:
        st.info("There are no studies yet: create one with `emaudit study create`.")
        st.stop()
    current = st.session_state.get(_ADMIN_STUDY)
    index = names.index(current) if current in names else 0
    chosen = st.sidebar.selectbox("Study", names, index=index)
    st.session_state[_ADMIN_STUDY] = chosen
    return str(chosen)


def inert_text(text: str, *, label: str | None = None, role: str = "text", height: str = "24rem") -> None:
    """Show model-written text literally: no markdown, no HTML, no links, no images.

    The text is escaped into a scrollable box of bounded height (:func:`~emaudit.annotate.app.render.
    text_box`) in the page's proportional font, with ``dir="auto"`` so right-to-left text reads
    right to left; an empty or whitespace-only text gets a visible note and marks.
    """
    if label:
        st.caption(label)
    note = whitespace_note(text)
    if note:
        st.caption(f":material/space_bar: {note}")
    st.html(text_box(text, role=role, height=height))
