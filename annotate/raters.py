"""Raters: personal links with unguessable tokens, and crowd (Prolific) sign-in by study link.

A token is ``secrets.token_urlsafe(32)`` (256 bits); only its SHA-256 is stored, so a copy of the
database does not let anyone rate as someone else. The link is printed once, when the rater is
added.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from emaudit.annotate._tables import RATER, STUDY
from emaudit.annotate.queue import has_work, rated_count
from emaudit.annotate.sampling import get_study
from emaudit.errors import EmauditError
from emaudit.models import RATER_ROLES, Rater, Study

ROLES = RATER_ROLES
DEFAULT_APP_URL = "http://localhost:8501"
APP_URL_ENV = "EMAUDIT_APP_URL"
_PROLIFIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def app_url(base_url: str | None = None) -> str:
    """The app's address for links: ``base_url``, else ``EMAUDIT_APP_URL``, else localhost:8501."""
    return (base_url or os.environ.get(APP_URL_ENV) or DEFAULT_APP_URL).rstrip("/")


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256, hex). Tokens are random, so no salt is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def rater_link(token: str, base_url: str | None = None) -> str:
    """The personal link a rater opens."""
    return f"{app_url(base_url)}/?{urlencode({'token': token})}"


def crowd_link(study: Study, base_url: str | None = None) -> str:
    """The study link to paste into Prolific (it fills in the ``{{%...%}}`` placeholders).

    It carries the study's opaque ``crowd_key``, not its name: names often say which models or
    conditions are compared, and crowd raters must not learn that.
    """
    if not study.crowd_key:
        raise EmauditError(f"study {study.name!r} has no crowd key (run `emaudit init` to migrate)")
    query = urlencode({"study": study.crowd_key}) + (
        "&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"
    )
    return f"{app_url(base_url)}/?{query}"


@dataclass
class NewRater:
    """A rater just added, with the only copy of their token."""

    rater: Rater
    token: str

    def link(self, base_url: str | None = None) -> str:
        """Their personal link."""
        return rater_link(self.token, base_url)


def add_rater(
    session: Session,
    name: str,
    *,
    external_id: str | None = None,
    role: str = "rater",
    study: Study | int | str | None = None,
    quota: int | None = None,
) -> NewRater:
    """Create a rater and their token.

    Args:
        session: A write transaction.
        name: Display name (shown to admins only).
        external_id: An id from elsewhere, e.g. a Prolific PID; unique within a study.
        role: ``rater`` or ``admin``.
        study: Restrict the rater to one study (default: any study).
        quota: Most items this rater may rate (per study); None is unlimited.
    """
    if role not in ROLES:
        raise EmauditError(f"unknown role {role!r}; use {' or '.join(ROLES)}")
    if not name.strip():
        raise EmauditError("the rater needs a name")
    if quota is not None and quota < 1:
        raise EmauditError(f"the quota must be at least 1, got {quota}")
    study_id = get_study(session, study).id if study is not None else None
    if (
        external_id is not None
        and session.execute(
            select(RATER.c.id).where(RATER.c.external_id == external_id, RATER.c.study_id == study_id)
        ).first()
    ):
        raise EmauditError(f"a rater with external id {external_id!r} exists already")
    token = secrets.token_urlsafe(32)
    rater = Rater(
        display_name=name.strip(),
        external_id=external_id,
        role=role,
        token_hash=hash_token(token),
        study_id=study_id,
        quota=quota,
    )
    session.add(rater)
    session.flush()
    return NewRater(rater, token)


def rater_for_token(session: Session, token: str) -> Rater | None:
    """The active rater a link's token belongs to, or None (unknown, revoked or deactivated)."""
    if not token:
        return None
    query = select(Rater).where(RATER.c.token_hash == hash_token(token), RATER.c.active.is_(True))
    return session.execute(query).scalars().first()


def study_for_crowd_key(session: Session, key: str) -> Study | None:
    """The study whose crowd link carries ``key`` (None for an unknown key; names are not accepted)."""
    if not key:
        return None
    return session.execute(select(Study).where(STUDY.c.crowd_key == key)).scalars().first()


def find_rater(session: Session, who: str) -> Rater:
    """A rater by id, external id or display name (the id wins; a name must be unambiguous)."""
    if who.isdigit() and (by_id := session.get(Rater, int(who))) is not None:
        return by_id
    for column in (RATER.c.external_id, RATER.c.display_name):
        found = list(session.execute(select(Rater).where(column == who)).scalars())
        if len(found) > 1:
            raise EmauditError(f"{len(found)} raters are called {who!r}; give the rater's id")
        if found:
            return found[0]
    raise EmauditError(f"no rater {who!r}")


def revoke_rater(session: Session, rater: Rater, *, new_link: bool = False) -> NewRater | None:
    """Make the rater's link stop working at once (the next page view shows "link not valid").

    With ``new_link`` the rater stays active and gets a new token (a link that leaked is replaced);
    otherwise the rater is deactivated: their live claims go back to the pool and no item is
    handed to them again. Their ratings are kept either way.
    """
    from emaudit.annotate.queue import release_rater_claims

    token = secrets.token_urlsafe(32)
    rater.token_hash = hash_token(token)
    if new_link:
        rater.active = True
        session.add(rater)
        session.flush()
        return NewRater(rater, token)
    rater.active = False
    session.add(rater)
    session.flush()
    assert rater.id is not None
    release_rater_claims(session, rater.id)
    return None


def reactivate_rater(session: Session, rater: Rater) -> NewRater:
    """Let a deactivated rater work again, with a new link (the old one stays dead)."""
    new = revoke_rater(session, rater, new_link=True)
    assert new is not None
    return new


def list_raters(session: Session, study: Study | int | str | None = None) -> list[Rater]:
    """Raters, optionally those of one study (plus the ones not tied to a study)."""
    query = select(Rater).order_by(RATER.c.id)
    if study is not None:
        study_id = get_study(session, study).id
        query = query.where((RATER.c.study_id == study_id) | RATER.c.study_id.is_(None))
    return list(session.execute(query).scalars())


@dataclass
class CrowdSession:
    """Result of a crowd sign-in: the rater, and the completion code once they are finished."""

    rater: Rater
    completion_code: str | None
    created: bool


def crowd_session(
    session: Session,
    study: Study | int | str,
    *,
    prolific_pid: str,
    study_id: str | None = None,
    session_id: str | None = None,
) -> CrowdSession:
    """Get or create the rater of a crowd link (``PROLIFIC_PID`` / ``STUDY_ID`` / ``SESSION_ID``).

    The rater's ``external_id`` is the PID and their quota the study's ``rater_quota``. The
    completion code is earned, never given for nothing: it is returned once the rater has rated
    their quota; in a study without a quota, once they have rated at least one answer and none is
    left for them. A rater who finds the study full before their quota gets no code (the app tells
    them to return the study on the platform).
    """
    if not prolific_pid or not _PROLIFIC_ID.match(prolific_pid):
        raise EmauditError("this study link needs a PROLIFIC_PID (letters, digits, '-' or '_')")
    study_row = get_study(session, study)
    query = select(Rater).where(RATER.c.study_id == study_row.id, RATER.c.external_id == prolific_pid)
    rater = session.execute(query).scalars().first()
    created = False
    if rater is None:
        rater = Rater(
            display_name=f"prolific:{prolific_pid}",
            external_id=prolific_pid,
            role="rater",
            token_hash=hash_token(secrets.token_urlsafe(32)),
            study_id=study_row.id,
            quota=study_row.rater_quota,
            extra={"STUDY_ID": study_id, "SESSION_ID": session_id},
        )
        try:
            with session.begin_nested():  # two replicas may sign the same PID in at once
                session.add(rater)
            created = True
        except IntegrityError:
            rater = session.execute(query).scalars().one()
    assert rater.id is not None and study_row.id is not None
    done = rated_count(session, study_row.id, rater.id)
    if rater.quota is not None:
        finished = done >= rater.quota
    else:
        finished = done >= 1 and not has_work(session, study_row, rater)
    return CrowdSession(
        rater=rater, completion_code=study_row.completion_code if finished else None, created=created
    )
