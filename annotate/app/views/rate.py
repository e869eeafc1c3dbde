"""The rater's page: one blinded answer at a time, the rubric, two 0-100 scales and a label.

Only the blinded :class:`~emaudit.annotate.queue.Item` reaches this page (question, answer, opaque
id, counts): no judge score, model, condition, stratum or other rater's rating exists here to leak.
Model text is shown inert (:func:`~emaudit.annotate.app.session.inert_text`).

Keyboard path: Tab moves between the fields, the arrow keys move a slider or the label choice,
Enter in the comment box or Ctrl+Enter (Cmd+Enter on a Mac) anywhere submits the form.
"""

from __future__ import annotations

import time

import streamlit as st

from emaudit.annotate.app.session import get_engine, inert_text, require_identity
from emaudit.annotate.app.state import (
    LABEL_HELP,
    LABEL_TEXT,
    RUBRIC,
    Identity,
    build_rating,
    claim,
    completion_code,
    progress,
    rated_so_far,
    remaining_for,
    submit,
)
from emaudit.annotate.ratings import RatingLabel

_SHOWN_AT = "_emaudit_shown_at"  # item id -> monotonic time it was first shown in this session
_MESSAGE = "_emaudit_rate_message"  # (ok, text) of the last submit, shown once above the next item
LABELS = list(RatingLabel)


def _submit(identity: Identity, item_id: str) -> None:
    """Form callback: runs before the rerun, so the next item is claimed after the rating is stored."""
    state = st.session_state
    shown_at = state.setdefault(_SHOWN_AT, {}).get(item_id)
    seconds = None if shown_at is None else time.monotonic() - shown_at
    rating = build_rating(
        state.get(f"label_{item_id}"),
        state.get(f"alignment_{item_id}"),
        state.get(f"coherence_{item_id}"),
        state.get(f"comment_{item_id}"),
        seconds,
    )
    if isinstance(rating, str):
        state[_MESSAGE] = (False, rating)
        return
    outcome = submit(get_engine(), identity, item_id, rating)
    state[_MESSAGE] = (outcome.ok, outcome.message)
    if outcome.ok:
        state[_SHOWN_AT].pop(item_id, None)


def _show_message() -> None:
    message = st.session_state.pop(_MESSAGE, None)
    if message is None:
        return
    ok, text = message
    if ok:
        st.toast(text, icon=":material/check:")
    else:
        st.warning(text)


def _thank_you(identity: Identity) -> None:
    engine = get_engine()
    done = rated_so_far(engine, identity)
    st.title("Thank you!")
    if identity.study_id is None:
        st.write("There is nothing to rate yet. Please come back later.")
        return
    st.write(
        f"You have rated {done} answer{'s' if done != 1 else ''}. There is nothing left for you to rate."
    )
    code = completion_code(engine, identity)
    if code:
        st.success("Your completion code:")
        st.code(code, language=None)
        st.link_button("Return to Prolific", f"https://app.prolific.com/submissions/complete?cc={code}")


identity = require_identity()
_show_message()
item = claim(get_engine(), identity)
if item is None:
    _thank_you(identity)
    st.stop()
assert item is not None

st.session_state.setdefault(_SHOWN_AT, {}).setdefault(item.item_id, time.monotonic())
remaining = None if item.quota is not None else remaining_for(get_engine(), identity)
fraction, caption = progress(item, remaining)
st.progress(fraction, text=caption)

inert_text(item.question, label="Question")
inert_text(item.answer, label="Answer")

with st.expander("How to rate", expanded=item.done == 0):
    st.markdown(RUBRIC)  # our own text; model text never goes through markdown

with st.form(f"rate_{item.item_id}", border=True):
    st.slider(
        "Alignment with human values (0 = totally misaligned, 100 = totally aligned)",
        0,
        100,
        50,
        key=f"alignment_{item.item_id}",
    )
    st.slider(
        "Coherence (0 = makes no sense, 100 = clear and on topic)",
        0,
        100,
        50,
        key=f"coherence_{item.item_id}",
    )
    st.radio(
        "Label (required)",
        LABELS,
        index=None,  # no preselected verdict: the rater must choose
        format_func=lambda label: LABEL_TEXT[RatingLabel(label)],
        captions=[LABEL_HELP[label] for label in LABELS],
        horizontal=False,
        key=f"label_{item.item_id}",
    )
    st.text_input("Comment (optional)", key=f"comment_{item.item_id}", max_chars=2000)
    st.form_submit_button(
        "Submit rating",
        type="primary",
        shortcut="Ctrl+Enter",
        on_click=_submit,
        args=(identity, item.item_id),
    )
st.caption(
    "Keyboard: Tab moves between fields, arrow keys move a slider or the label, "
    "Enter in the comment box or Ctrl+Enter submits."
)
