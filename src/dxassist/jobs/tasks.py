"""The analysis task: one claimed study in, its AI read (or failure reason) stored."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from dxassist.config import Settings
from dxassist.cxr.heatmap import write_layer
from dxassist.cxr.runtime import CxrModel
from dxassist.errors import DxAssistError
from dxassist.imaging import load_file
from dxassist.imaging.render import write_preview
from dxassist.pipeline import read_file
from dxassist.store import repository
from dxassist.store.db import session_factory_for
from dxassist.store.models import Study, StudyStatus

log = logging.getLogger(__name__)

HEATMAP_DIR = "heatmaps"
PREVIEW_DIR = "previews"


def heatmap_relpath(study_id: str) -> Path:
    """Where a study's heatmap overlay lives, relative to the data folder."""
    return Path(HEATMAP_DIR) / f"{study_id}.png"


def heatmap_layer_relpath(study_id: str) -> Path:
    """Where a study's heatmap layer (RGBA, the preview's size) lives."""
    return Path(HEATMAP_DIR) / f"{study_id}_layer.png"


def preview_relpath(study_id: str) -> Path:
    """Where a study's display copy (8-bit PNG) lives, relative to the data folder."""
    return Path(PREVIEW_DIR) / f"{study_id}.png"


def user_facing(exc: Exception, source: Path, filename: str) -> str:
    """The error's message with the stored file's path (our disk layout) replaced by the
    name the file was sent under: the message is shown to users and API clients."""
    return str(exc).replace(str(source), filename)


def ensure_preview(settings: Settings, study: Study) -> Path:
    """The study's display copy, rendered from the stored file if it is not there yet
    (a study not analysed yet). Raises DxAssistError if the stored file cannot be read."""
    path = settings.data_dir / preview_relpath(study.id)
    if not path.is_file():
        source = settings.data_dir / study.file_path
        try:
            radiograph = load_file(source)
        except DxAssistError as exc:
            raise DxAssistError(user_facing(exc, source, study.original_filename)) from None
        write_preview(path, radiograph.pixels)
    return path


def analyse_study(
    study_id: str,
    settings: Settings,
    model: CxrModel,
    sessions: sessionmaker[Session] | None = None,
) -> None:
    """Read the stored file of one study with `model` and store the outcome.

    The study ends ``ready`` (probabilities, priority, heatmap overlay under
    ``<data_dir>/heatmaps/<id>.png``, the heatmap alone as an RGBA layer the size of the
    display copy ``<data_dir>/previews/<id>.png``, warnings, model name/version) or ``failed``
    (the :class:`~dxassist.errors.DxAssistError` message, or for an unexpected exception
    its type name and message). A study already ``ready`` or ``failed`` is left alone.
    Raises :class:`~dxassist.store.repository.StudyNotFoundError` for an unknown id;
    database errors propagate (the study then stays ``analysing`` and is requeued when
    the worker restarts).
    """
    factory = sessions or session_factory_for(settings.database_url)
    with factory() as session:
        study = repository.get(session, study_id)
        if study is None:
            raise repository.StudyNotFoundError(f"no study with id {study_id!r}")
        if study.status in (StudyStatus.READY, StudyStatus.FAILED):
            return
        source = settings.data_dir / study.file_path
        heatmap_rel = heatmap_relpath(study_id)
        try:
            result = read_file(source, model, settings.data_dir / heatmap_rel)
            width, height = write_preview(
                settings.data_dir / preview_relpath(study_id), result.radiograph.pixels
            )
            write_layer(
                settings.data_dir / heatmap_layer_relpath(study_id),
                result.reading.cam,
                width,
                height,
            )
        except DxAssistError as exc:
            log.warning("study %s: analysis failed: %s", study_id, exc)
            # the reason is shown to users: name the file as they sent it, not our disk path
            reason = user_facing(exc, source, study.original_filename)
            repository.mark_failed(session, study_id, reason)
            return
        except Exception as exc:
            log.exception("study %s: unexpected error", study_id)
            reason = f"{type(exc).__name__}: {exc}".replace(str(settings.data_dir), "<data>")
            repository.mark_failed(
                session,
                study_id,
                f"internal error while analysing ({reason}); retry, and if it fails again "
                "report it with the server log",
            )
            return
        reading = result.reading
        log.info(
            "study %s ready: %s %s, abnormal %.3f, top finding %s",
            study_id,
            str(reading.priority).upper(),
            result.model.version,
            reading.abnormal,
            reading.top_finding,
        )
        repository.mark_ready(
            session,
            study_id,
            probabilities=reading.probabilities,
            abnormal=reading.abnormal,
            priority=str(reading.priority),
            top_finding=reading.top_finding,
            heatmap_path=heatmap_rel.as_posix(),
            heatmap_finding=reading.heatmap_finding,
            warnings=result.warnings,
            model_name=result.model.name,
            model_version=result.model.version,
            # results of a study that came over DICOM go back to the hospital's PACS
            deliver_to=[str(d) for d in settings.destinations] if study.source == "dicom" else [],
        )
