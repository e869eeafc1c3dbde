"""The rating app (Streamlit), a component of its own on top of the annotation engine.

``streamlit_app.py`` is the router, ``views/`` holds the page scripts, ``state`` and ``admin`` hold
what the pages do with the store (no Streamlit, unit-testable), ``session`` is the thin Streamlit
glue, and ``server`` starts it: :func:`emaudit.annotate.app.server.serve_app` is what ``emaudit app``
calls. This package imports nothing on load, so ``server`` can be used without loading Streamlit.
"""
