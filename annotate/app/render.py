"""HTML and script the rating app writes itself: inert text boxes, the rater page's keyboard script.

Model text is untrusted. :func:`text_box` escapes every character that HTML gives meaning to
(``html.escape`` with quotes) before it is placed in a ``<div>``; Streamlit then sanitises the
element once more (DOMPurify). Nothing model-written is ever parsed as markdown or HTML, and no
model text reaches :func:`rater_page_script`, which is our own code with one opaque item id.
"""

from __future__ import annotations

import html
import json
from typing import Final

_BOX_STYLE: Final = (
    "white-space: pre-wrap; overflow-wrap: anywhere; overflow-y: auto; max-height: {height};"
    " font-family: inherit; line-height: 1.5; padding: 0.6rem 0.9rem; border-radius: 0.5rem;"
    " border: 1px solid rgba(49, 51, 63, 0.2); background: rgba(240, 242, 246, 0.5);"
)
_WHITESPACE_MARKS: Final = {" ": "\u2423", "\t": "\u21e5", "\n": "\u23ce\n", "\r": "\u240d"}


def whitespace_note(text: str) -> str | None:
    """A visible note for an empty or whitespace-only answer (else None), so raters see it is blank."""
    if text.strip():
        return None
    if not text:
        return "This answer is empty."
    return f"This answer is only whitespace ({len(text)} characters, shown as marks)."


def text_box(text: str, *, role: str, height: str = "24rem") -> str:
    """An inert, scrollable, right-to-left-aware box for model text (question or answer).

    Args:
        text: The text, shown verbatim (escaped; a whitespace-only text is shown as marks).
        role: ``question`` or ``answer``: the box's ``data-role`` (tests and the page script use it).
        height: The box's maximum height (CSS); longer text scrolls inside the box.
    """
    shown = text
    if not text.strip():
        shown = "".join(_WHITESPACE_MARKS.get(char, char) for char in text) or "\u2205"
    return (
        f'<div data-role="{html.escape(role)}" dir="auto" tabindex="-1" '
        f'aria-label="{html.escape(role.capitalize())}" style="{_BOX_STYLE.format(height=height)}">'
        f"{html.escape(shown, quote=True)}</div>"
    )


_SCRIPT: Final = """
<script>
(() => {
  const item = %(item)s;
  const labels = %(labels)d;
  const doc = window.document;
  const focusable = (el) => el && (el.tagName === "TEXTAREA" ||
    (el.tagName === "INPUT" && !["radio", "checkbox", "range"].includes(el.type)));
  const submitButton = () => doc.querySelector(".st-key-emaudit_submit button");
  if (!window.__emauditKeys) {
    window.__emauditKeys = true;
    // Capture phase: the label radio (react-aria) and Streamlit's own shortcut handling swallow
    // Enter on inputs, so the page listens before them.
    doc.addEventListener("keydown", (event) => {
      const target = event.target;
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey || (target && target.type === "radio")
          || (target && target.closest && target.closest(".st-key-emaudit_comment")))) {
        const button = submitButton();
        if (!button) return;
        event.preventDefault();
        event.stopPropagation();
        if (target && target.blur) target.blur();  // commit a typed comment before the click
        setTimeout(() => button.click(), 60);
        return;
      }
      if (!event.ctrlKey && !event.metaKey && !event.altKey && /^[1-9]$/.test(event.key)
          && !focusable(target)) {
        const options = doc.querySelectorAll('[class*="st-key-label_"] [data-testid="stRadioOption"]');
        const option = options[Number(event.key) - 1];
        if (option && Number(event.key) <= window.__emauditLabels) {
          event.preventDefault();
          option.click();
          const input = option.querySelector("input");
          if (input) input.focus();
        }
      }
    }, true);
    // The server connection: a visible banner while it is down (Streamlit's own hint is a small
    // icon in a corner that raters miss), gone once it answers again.
    const banner = doc.createElement("div");
    banner.id = "emaudit-offline";
    banner.setAttribute("role", "alert");
    banner.textContent = "The connection to the rating server was lost. Ratings you saw confirmed " +
      "are saved. Keep this tab open: it reconnects by itself; if not, reload the page in a minute.";
    banner.style.cssText = "display:none; position:fixed; top:0; left:0; right:0; z-index:1000000;" +
      "padding:0.8rem 1rem; background:#b00020; color:#fff; font-weight:600; text-align:center;";
    doc.body.appendChild(banner);
    const health = window.location.origin + "/_stcore/health";
    const check = () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 2500);
      fetch(health, {cache: "no-store", signal: controller.signal})
        .then((response) => { banner.style.display = response.ok ? "none" : "block"; })
        .catch(() => { banner.style.display = "block"; })
        .finally(() => clearTimeout(timer));
    };
    setInterval(check, 2000);
  }
  window.__emauditLabels = labels;
  if (window.__emauditItem === item) return;
  // A new item: once its elements replaced the previous run's, scroll to its top and focus it.
  let tries = 0;
  const show = () => {
    const box = doc.querySelector('[data-role="question"]');
    const stale = doc.querySelector("[data-stale='true']");
    if ((!box || stale || box.closest("[data-stale='true']")) && tries++ < 100) {
      setTimeout(show, 30);
      return;
    }
    if (!box) return;
    window.__emauditItem = item;
    const top = doc.querySelector('[data-testid="stProgress"]') || box;
    top.scrollIntoView({block: "start"});
    window.scrollBy(0, -8);
    box.focus({preventScroll: true});
  };
  show();
})();
</script>
"""


def rater_page_script(item_id: str, labels: int) -> str:
    """The rater page's script for the item ``item_id`` (an opaque token) with ``labels`` labels.

    Keys: Ctrl+Enter (Cmd+Enter) anywhere, and Enter on the label or in the comment, submit;
    digits 1..``labels`` choose a label unless a text field has focus. After a submit the next
    item is scrolled to the top and gets the focus. A banner shows while the server is unreachable.
    """
    return _SCRIPT % {"item": json.dumps(item_id), "labels": labels}
