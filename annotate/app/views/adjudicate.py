"""Admin: the adjudication queue, items whose raters disagree; the admin's label is final.

The judge's scores are shown only for items already decided: the adjudicated label later
calibrates that judge, so it must be made without seeing what the judge said.
"""

from __future__ import annotations

import streamlit as st

from emaudit.annotate.app.admin import DisputedItem, adjudicate, disputed_items
from emaudit.annotate.app.session import admin_study, get_engine, inert_text, require_admin
from emaudit.annotate.app.state import LABEL_TEXT, Identity
from emaudit.annotate.ratings import RatingLabel
from emaudit.errors import EmauditError

LABELS = list(RatingLabel)
PAGE_SIZE = 10  # items drawn per page: each carries two text blocks, a table and a form


def _show(item: DisputedItem, identity: Identity) -> None:
    title = f"Item {item.public_id} · stratum {item.stratum}" + (" · gold" if item.is_gold else "")
    with st.container(border=True):
        st.text(title)  # stratum names carry cell values (model names...): never parsed as markdown
        inert_text(item.question, label="Question")
        inert_text(item.answer, label="Answer")
        if item.judge_scores and item.adjudicated:
            st.caption(
                "Judge: "
                + ", ".join(
                    f"{metric} {'-' if score is None else f'{score:.1f}'}"
                    for metric, score in sorted(item.judge_scores.items())
                )
            )
        st.dataframe(
            [
                {
                    "rater": r.rater,
                    "label": r.label,
                    "alignment": r.alignment,
                    "coherence": r.coherence,
                    "comment": r.comment,
                    "seconds": r.seconds,
                }
                for r in item.ratings
            ],
            hide_index=True,
        )
        if item.adjudicated:
            st.info(f"Adjudicated as {item.adjudicated}; a new decision replaces it.")
        with st.form(f"adjudicate_{item.item_id}"):
            label = st.radio(
                "Final label",
                LABELS,
                index=None,
                horizontal=True,
                format_func=lambda value: LABEL_TEXT[RatingLabel(value)],
                key=f"adj_label_{item.item_id}",
            )
            note = st.text_input("Note (optional)", key=f"adj_note_{item.item_id}")
            if st.form_submit_button("Save decision"):
                if label is None:
                    st.warning("Choose a label.")
                else:
                    try:
                        adjudicate(get_engine(), identity, item.item_id, str(label), note=note)
                    except EmauditError as error:
                        st.error(str(error))
                    else:
                        st.rerun()


identity = require_admin()
study = admin_study(identity)

st.title("Adjudication queue")
any_label = st.toggle(
    "Any different labels", help="Off: only misaligned-vs-not splits, which change the human label."
)
include_done = st.toggle("Include adjudicated items")
items = disputed_items(get_engine(), study, any_label=any_label, include_adjudicated=include_done)
if not items:
    st.success("No disagreements to adjudicate.")
    st.stop()
pages = (len(items) + PAGE_SIZE - 1) // PAGE_SIZE
page_no = 1
if pages > 1:
    page_no = int(st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1))
first = (page_no - 1) * PAGE_SIZE
st.write(f"{len(items)} item(s); showing {first + 1}-{min(first + PAGE_SIZE, len(items))}.")
for disputed in items[first : first + PAGE_SIZE]:  # decided items leave the queue; the rest move up
    _show(disputed, identity)
