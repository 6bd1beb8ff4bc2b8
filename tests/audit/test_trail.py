"""The audit chain itself, on SQLite and PostgreSQL: append, verify, tamper, triggers,
concurrent writers."""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from dxassist.audit import trail
from dxassist.audit.trail import Action, AuditQuery, entry_hash, events, record, verify
from dxassist.store import make_engine
from dxassist.store.models import AuditEvent


def _fill(session: Session, n: int = 5) -> list[AuditEvent]:
    return [
        record(
            session,
            Action.STUDY_VIEW,
            actor=f"user{i % 2}",
            actor_role="radiologist",
            study_id=f"study-{i}",
            detail={"i": i},
            client="10.0.0.1",
        )
        for i in range(n)
    ]


@contextlib.contextmanager
def attacker(url: str) -> Iterator[Connection]:
    """A raw connection of someone with database access who first drops the triggers (the
    application's connection never can change a row while they exist)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event"))
            else:
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_update"))
                conn.execute(text("DROP TRIGGER IF EXISTS audit_event_no_delete"))
            yield conn
    finally:
        engine.dispose()


def test_appends_chain_and_verify(session: Session) -> None:
    empty = verify(session)
    assert empty.intact and empty.count == 0 and empty.head_hash == trail.GENESIS
    made = _fill(session)
    assert [e.id for e in made] == [1, 2, 3, 4, 5]
    assert made[0].prev_hash == trail.GENESIS
    for before, after in itertools.pairwise(made):
        assert after.prev_hash == before.hash
    for e in made:  # the hash is over the stored values, as read back from the database
        session.expire(e)
        assert entry_hash(e.prev_hash, e) == e.hash
    result = verify(session)
    assert result.intact and result.count == 5
    assert (result.head_id, result.head_hash) == (5, made[-1].hash)
    assert verify(session, expect=(3, made[2].hash)).intact
    # filters, newest first
    assert [e.id for e in events(session, AuditQuery(user="user1"))] == [4, 2]
    assert [e.id for e in events(session, AuditQuery(study="study-3"))] == [4]
    assert [e.id for e in events(session, AuditQuery(limit=2))] == [5, 4]
    assert events(session, AuditQuery(action="login")) == []


def test_updates_deletes_and_truncate_are_refused_by_the_database(
    session: Session, settings: object
) -> None:
    _fill(session, 2)
    for statement in (
        "UPDATE audit_event SET actor = 'someone else' WHERE id = 1",
        "DELETE FROM audit_event WHERE id = 2",
        "DELETE FROM audit_event",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
    if session.get_bind().dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text("TRUNCATE audit_event"))
        session.rollback()
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
    assert session.scalar(select(AuditEvent.actor).where(AuditEvent.id == 1)) == "user0"
    assert verify(session).intact


def _url(session: Session) -> str:
    return session.get_bind().url.render_as_string(hide_password=False)  # type: ignore[union-attr]


def test_an_edited_entry_is_found(session: Session) -> None:
    made = _fill(session)
    with attacker(_url(session)) as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'nobody' WHERE id = 3"))
    result = verify(session)
    assert not result.intact and result.bad_id == 3 and result.count == 2
    assert "entry 3" in (result.problem or "") and "edited" in (result.problem or "")

    # the attacker also recomputes entry 3's hash: the link from entry 4 breaks
    session.expire_all()
    edited = session.get(AuditEvent, 3)
    assert edited is not None
    new_hash = entry_hash(edited.prev_hash, edited)
    with attacker(_url(session)) as conn:
        conn.execute(text("UPDATE audit_event SET hash = :h WHERE id = 3"), {"h": new_hash})
    session.expire_all()
    result = verify(session)
    assert not result.intact and result.bad_id == 4
    assert "link" in (result.problem or "")
    # an exported head also catches a rewrite that rehashes everything to the end
    assert made[-1].hash != new_hash


def test_a_deleted_entry_is_found(session: Session) -> None:
    made = _fill(session)
    with attacker(_url(session)) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = 2"))
    result = verify(session)
    assert not result.intact and result.bad_id == 2
    assert "entry 3 follows entry 1" in (result.problem or "")
    assert "deleted" in (result.problem or "")

    # deleting the newest entries leaves a valid chain: only a head written down earlier
    # tells (the documented limit of a hash chain)
    with attacker(_url(session)) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id >= 2"))
    assert verify(session).intact
    late = verify(session, expect=(5, made[-1].hash))
    assert not late.intact and "deleted" in (late.problem or "")


def test_deleting_the_first_entry_is_found(session: Session) -> None:
    _fill(session, 3)
    with attacker(_url(session)) as conn:
        conn.execute(text("DELETE FROM audit_event WHERE id = 1"))
    result = verify(session)
    assert not result.intact and result.bad_id == 1 and "entry 1 missing" in (result.problem or "")


def test_reordered_entries_are_found(session: Session) -> None:
    _fill(session)
    with attacker(_url(session)) as conn:  # swap entries 2 and 3 (their ids)
        conn.execute(text("UPDATE audit_event SET id = 1000 WHERE id = 2"))
        conn.execute(text("UPDATE audit_event SET id = 2 WHERE id = 3"))
        conn.execute(text("UPDATE audit_event SET id = 3 WHERE id = 1000"))
    result = verify(session)
    assert not result.intact and result.bad_id == 2


@pytest.mark.parametrize("process_lock", [True, False], ids=["threads", "processes"])
def test_concurrent_appends_keep_one_chain(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, process_lock: bool
) -> None:
    """Threads of one process share the lock; without it (as separate processes would be)
    the database still serialises: PostgreSQL's advisory lock, and on SQLite the unique id
    and prev_hash with a retry."""
    if not process_lock:
        monkeypatch.setattr(trail, "_append_lock", contextlib.nullcontext())
    per_thread, n_threads = 15, 4
    errors: list[BaseException] = []
    start = threading.Barrier(n_threads)

    def work(k: int) -> None:
        try:
            start.wait()
            with sessions() as s:
                for i in range(per_thread):
                    record(s, Action.IMAGE_VIEW, actor=f"t{k}", study_id=str(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sessions() as s:
        result = verify(s)
        assert result.intact, result.problem
        assert result.count == per_thread * n_threads
        n_links = s.scalar(select(func.count(func.distinct(AuditEvent.prev_hash))))
        assert n_links == result.count


def test_detail_is_short_and_one_line(session: Session) -> None:
    e = record(
        session,
        Action.LOGIN_FAILED,
        actor="x" * 300 + "\n",
        detail={"note": "a\nb" + "y" * 500},
        client=None,
    )
    assert len(e.actor) == 64 and "\n" not in e.actor
    assert e.detail is not None and "\n" not in e.detail and len(e.detail) < 300
    assert verify(session).intact


def test_a_write_that_cannot_be_made_raises(session: Session) -> None:
    session.execute(text("DROP TABLE audit_event"))
    session.commit()
    with pytest.raises(trail.AuditUnavailableError, match="cannot be written"):
        record(session, Action.LOGIN, actor="rad1")
