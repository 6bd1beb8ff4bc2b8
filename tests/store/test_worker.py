from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings
from dxassist.cxr.runtime import CxrModel
from dxassist.ingest import receive_file
from dxassist.jobs import Worker, analyse_study
from dxassist.store import Study, StudyStatus
from dxassist.store import repository as repo


def receive(settings: Settings, sessions: sessionmaker[Session], path: Path) -> str:
    with sessions() as s:
        return receive_file(settings, s, path.read_bytes(), path.name).id


def fetch(sessions: sessionmaker[Session], study_id: str) -> Study:
    with sessions() as s:
        study = repo.get(s, study_id)
        assert study is not None
        return study


def assert_ready(settings: Settings, study: Study) -> None:
    assert study.status == StudyStatus.READY, study.failure_reason
    assert study.probabilities is not None
    assert math.isclose(sum(study.probabilities.values()), 1.0, abs_tol=1e-4)
    assert study.abnormal is not None and 0.0 <= study.abnormal <= 1.0
    assert study.priority in ("urgent", "priority", "routine")
    assert study.top_finding in study.probabilities
    assert study.heatmap_path == f"heatmaps/{study.id}.png"
    heatmap = settings.data_dir / study.heatmap_path
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert study.model_name and study.model_version
    assert isinstance(study.warnings, list)
    assert study.failure_reason is None


def test_drain_reads_every_received_study(
    settings: Settings,
    sessions: sessionmaker[Session],
    model: CxrModel,
    rg1_uncr: Path,
    nih_png: Path,
) -> None:
    ids = [receive(settings, sessions, rg1_uncr), receive(settings, sessions, nih_png)]
    worker = Worker(settings, model, sessions)
    assert worker.drain() == 2
    assert worker.drain() == 0
    for study_id in ids:
        study = fetch(sessions, study_id)
        assert_ready(settings, study)
        assert study.attempts == 1


def test_crash_while_analysing_is_requeued_and_finished(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    study_id = receive(settings, sessions, rg1_uncr)
    with sessions() as s:  # a worker claims the study, then the process dies
        claimed = repo.claim_next(s)
        assert claimed is not None and claimed.id == study_id
    assert fetch(sessions, study_id).status == StudyStatus.ANALYSING

    worker = Worker(settings, model, sessions)  # the restarted service
    assert worker.drain() == 0  # nothing is 'received': the study would be stuck
    assert worker.requeue_stale() == 1
    assert fetch(sessions, study_id).status == StudyStatus.RECEIVED
    assert worker.drain() == 1
    study = fetch(sessions, study_id)
    assert_ready(settings, study)
    assert study.attempts == 2


def test_background_worker_thread(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    study_id = receive(settings, sessions, rg1_uncr)
    with sessions() as s:  # left over from an earlier run: start() requeues it
        assert repo.claim_next(s) is not None
    worker = Worker(settings, model, sessions, poll_interval=0.05)
    worker.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while fetch(sessions, study_id).status != StudyStatus.READY:
            assert datetime.now(UTC) < deadline, "worker did not finish the study"
            threading.Event().wait(0.05)
    finally:
        worker.stop()
    assert not worker.running
    assert_ready(settings, fetch(sessions, study_id))


def test_file_unreadable_after_receipt_fails_with_reason(
    settings: Settings,
    sessions: sessionmaker[Session],
    model: CxrModel,
    rg1_uncr: Path,
    rg1_j2kr: Path,
) -> None:
    corrupt = receive(settings, sessions, rg1_uncr)
    missing = receive(settings, sessions, rg1_j2kr)
    corrupt_path = settings.data_dir / fetch(sessions, corrupt).file_path
    corrupt_path.write_bytes(corrupt_path.read_bytes()[:600])  # truncated on disk
    (settings.data_dir / fetch(sessions, missing).file_path).unlink()

    assert Worker(settings, model, sessions).drain() == 2
    for study_id in (corrupt, missing):
        study = fetch(sessions, study_id)
        assert study.status == StudyStatus.FAILED
        assert study.failure_reason
        assert study.probabilities is None
        assert not (settings.data_dir / "heatmaps" / f"{study_id}.png").exists()


def test_analyse_study_leaves_finished_study_alone(
    settings: Settings, sessions: sessionmaker[Session], model: CxrModel, rg1_uncr: Path
) -> None:
    study_id = receive(settings, sessions, rg1_uncr)
    with sessions() as s:
        repo.mark_failed(s, study_id, "rejected by hand")
    analyse_study(study_id, settings, model, sessions)
    study = fetch(sessions, study_id)
    assert study.status == StudyStatus.FAILED
    assert study.failure_reason == "rejected by hand"


def test_concurrent_claimers_never_share_a_study(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    with sessions() as s:
        ids = {
            repo.add_received(
                s, original_filename=f"{i}.dcm", file_path=f"files/{i}", sha256=f"sha-{i}"
            ).id
            for i in range(40)
        }
        s.commit()
    claims: list[list[str]] = [[], [], []]
    barrier = threading.Barrier(len(claims))
    errors: list[BaseException] = []

    def claimer(out: list[str]) -> None:
        try:
            with sessions() as s:
                barrier.wait()
                while (study := repo.claim_next(s)) is not None:
                    out.append(study.id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(out,)) for out in claims]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    claimed = [i for out in claims for i in out]
    assert len(claimed) == len(set(claimed)) == len(ids)
    assert set(claimed) == ids
    with sessions() as s:
        assert all(
            (st := repo.get(s, i)) is not None
            and st.status == StudyStatus.ANALYSING
            and st.attempts == 1
            for i in ids
        )


def test_list_open_orders_urgent_priority_routine_then_oldest(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    base = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    # (name, minutes after base, outcome)
    plan = [
        ("routine-old", 0, "routine"),
        ("urgent-new", 50, "urgent"),
        ("priority-new", 40, "priority"),
        ("urgent-old", 10, "urgent"),
        ("received", 5, None),
        ("failed", 1, "failed"),
        ("priority-old", 20, "priority"),
        ("routine-new", 30, "routine"),
    ]
    with sessions() as s:
        for name, minutes, outcome in plan:
            study = repo.add_received(
                s, original_filename=name, file_path=f"files/{name}", sha256=name
            )
            study.created_at = base + timedelta(minutes=minutes)
            s.commit()
            if outcome == "failed":
                repo.mark_failed(s, study.id, "broken")
            elif outcome is not None:
                repo.mark_ready(
                    s,
                    study.id,
                    probabilities={"normal": 0.5, "covid19": 0.5},
                    abnormal=0.5,
                    priority=outcome,
                    top_finding="normal",
                    heatmap_path=None,
                    warnings=[],
                    model_name="m",
                    model_version="1",
                )
    with sessions() as s:
        names = [st.original_filename for st in repo.list_open(s)]
    assert names == [
        "urgent-old",
        "urgent-new",
        "priority-old",
        "priority-new",
        "routine-old",
        "routine-new",
        "failed",  # failed analysis still needs a radiologist's read: it stays on the list
        "received",
    ]
