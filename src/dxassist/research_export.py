"""``dxassist export --deidentified OUT/``: the reviewed studies as a research data set
that holds no identifiers, ready to deposit in a shared archive.

OUT/ gets:

* ``images/<pseudonym>.png``: the display copy of each study (8-bit greyscale pixels,
  longest side at most 2048 px), rendered from the stored file by
  :func:`dxassist.jobs.tasks.ensure_preview` and passed through
  :func:`dxassist.privacy.strip_image_metadata`, so the PNG holds pixels and nothing
  else. The original file (a DICOM with its header) is never copied.
* ``manifest.csv``: the columns ``dxassist train --manifest`` reads (path, dataset,
  patient_id, label, view, age_group, split) and ``labels`` (every label of the review).
  ``patient_id`` and the image names are keyed hashes (HMAC-SHA256 with the site
  secret) of the site's patient key and of the study id, under labels of their own, so
  they match nothing else dxassist stores or shows: the archive cannot be joined back to
  the worklist, the database or the PACS without the site secret, which stays on site.
  ``split`` is the one the training export gives the patient (70/15/15 by patient).
  Rows are sorted by image name, not by date of arrival.
* ``README.md``: what the folder is, where it came from, the counts, the licence note
  and how to train on it.

Dates, study and series identifiers, UIDs, file names, ages (only adult/pediatric),
sex, reviewer names, notes and the AI's read are left out.
"""

from __future__ import annotations

import argparse
import csv
import hmac
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dxassist import __version__
from dxassist.errors import DxAssistError, InputError

if TYPE_CHECKING:  # the CLI imports this module; the heavy imports wait for a real export
    from dxassist.config import Settings
    from dxassist.store.models import Review, Study

MANIFEST_COLUMNS = ("path", "dataset", "patient_id", "label", "view", "age_group", "split")
EXPORT_COLUMNS = (*MANIFEST_COLUMNS, "labels")
WRITTEN = ("images", "manifest.csv", "README.md")


class ExportError(InputError):
    """The export cannot be written where asked (folder not empty, not a folder)."""


@dataclass
class ExportSummary:
    out: Path
    rows: int = 0
    skipped: list[str] = field(default_factory=list)  # why each unreadable study was left out
    labels: Counter[str] = field(default_factory=Counter)
    splits: Counter[str] = field(default_factory=Counter)
    patients: int = 0


def _pseudonym(secret: bytes, purpose: str, value: str, length: int = 20) -> str:
    mac = hmac.new(
        secret, f"dxassist research export v1\x00{purpose}\x00{value}".encode(), "sha256"
    )
    return mac.hexdigest()[:length]


def prepare_folder(out: Path, force: bool) -> list[str]:
    """Make `out` ready: create it, or (with `force`) clear what an earlier export wrote.

    Returns the names of other entries left in a forced folder. Raises
    :class:`ExportError` for a non-empty folder without `force`, or a path that is a file."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder; give a folder for the export")
    if out.is_dir():
        present = sorted(p.name for p in out.iterdir())
        if present and not force:
            raise ExportError(
                f"{out} is not empty ({', '.join(present[:5])}{', ...' if len(present) > 5 else ''}"
                "); give a new or empty folder, or --force to replace an earlier export there"
            )
        for name in WRITTEN:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        others = [p for p in present if p not in WRITTEN]
    else:
        others = []
    (out / "images").mkdir(parents=True, exist_ok=True)
    return others


def export_deidentified(
    settings: Settings,
    reviewed: list[tuple[Study, Review]],
    out: Path,
    *,
    force: bool = False,
    dataset: str | None = None,
) -> ExportSummary:
    """Write the de-identified research export of `reviewed` to `out` (see the module)."""
    from dxassist.jobs.tasks import ensure_preview
    from dxassist.privacy import load_or_create_site_secret, strip_image_metadata
    from dxassist.training_export import age_group, split_for

    prepare_folder(out, force)
    secret = load_or_create_site_secret(settings.data_dir)
    name = (dataset or settings.site).strip() or settings.site
    summary = ExportSummary(out=out)
    rows: list[dict[str, str]] = []
    patients: set[str] = set()
    for study, review in reviewed:
        try:
            png = strip_image_metadata(ensure_preview(settings, study).read_bytes())
        except (DxAssistError, OSError) as exc:
            summary.skipped.append(f"a study reviewed as {review.labels[0]}: {exc}")
            continue
        internal_patient = study.patient_key or f"study-{study.id}"
        image = f"images/{_pseudonym(secret, 'image', study.id)}.png"
        (out / image).write_bytes(png)
        patient = "p-" + _pseudonym(secret, "patient", internal_patient, 16)
        patients.add(patient)
        row = {
            "path": image,
            "dataset": name,
            "patient_id": patient,
            "label": review.labels[0],
            "view": study.view or "",
            "age_group": age_group(study.patient_age_years),
            "split": split_for(internal_patient),
            "labels": ";".join(review.labels),
        }
        rows.append(row)
        summary.labels[row["label"]] += 1
        summary.splits[row["split"]] += 1
    rows.sort(key=lambda r: r["path"])
    with (out / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    summary.rows = len(rows)
    summary.patients = len(patients)
    (out / "README.md").write_text(readme(summary, name), encoding="utf-8")
    return summary


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


def readme(summary: ExportSummary, dataset: str) -> str:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return f"""# De-identified chest radiographs: {dataset}

Exported by dxassist {__version__} on {today} with `dxassist export --deidentified`.

## What is here

- `images/`: {summary.rows} chest radiographs as 8-bit greyscale PNG (longest side at most
  2048 px), pixels only: no DICOM header, no PNG text, EXIF or ICC chunks.
- `manifest.csv`: one row per image, the columns `dxassist train --manifest` reads:
  `path` (relative to this folder), `dataset`, `patient_id` (a pseudonym), `label`
  (the radiologist's primary label after reviewing the AI read), `view`, `age_group`
  (adult, pediatric or unknown), `split` (train/val/test, fixed per patient), and `labels`
  (every label the radiologist gave, `;`-separated).

Counts: {summary.patients} patients; labels: {_counts(summary.labels)}; splits:
{_counts(summary.splits)}.

## Source

Studies received by the dxassist worklist service of site `{dataset}` and reviewed by its
radiologists. Only reviewed studies are included.

## No identifiers

The folder holds no names, patient IDs, dates, accession numbers, UIDs, file names or
free text. `patient_id` and the image names are keyed hashes (HMAC-SHA256) made with a
secret that stays at the site, under labels used only for this export: they cannot be
reversed or matched to the site's worklist, database or PACS without that secret. Images
of one patient share a `patient_id`, so splits never mix a patient's films.

What de-identification of the header cannot remove: text burned into the pixels (some
modalities print the name or ID on the film). Look at the images, or check that every
source had Burned In Annotation = NO, before depositing.

## Licence

The images are data of the site's patients. dxassist grants no licence to them: sharing
is governed by the site's ethics approval and data-sharing agreement. State the licence
(and the conditions of use, e.g. research only, no attempt at re-identification) here
before depositing.

## Training on it

    dxassist train --manifest manifest.csv --image-root . --out model/
    dxassist evaluate --manifest manifest.csv --image-root . \\
        --model model/dxassist-cxr-effnetlite0.onnx

(Rows labelled `other` are skipped by training: the model does not report that class.)
"""


def cmd_export(args: argparse.Namespace) -> int:
    from dxassist.cli import _err, _migrated_sessions, _service_settings
    from dxassist.store import repository
    from dxassist.store.models import StudyStatus

    settings = _service_settings()
    sessions = _migrated_sessions(settings)
    with sessions() as session:
        # a study held for burned-in text was never released: its pixels may identify
        reviewed = [
            (study, review)
            for study, review in repository.reviewed_studies(session)
            if study.status != StudyStatus.QUARANTINED
        ]
        out = Path(args.deidentified)
        try:
            summary = export_deidentified(
                settings, reviewed, out, force=args.force, dataset=args.dataset
            )
        except ExportError as exc:
            _err(str(exc))
            return 2
        from dxassist.audit import cli as audit_cli

        audit_cli.record_command(
            session,
            "export_research",
            {"rows": summary.rows, "patients": summary.patients, "out": out.name},
        )
    for reason in summary.skipped:
        _err(f"left out {reason}")
    print(
        f"wrote {summary.rows} images of {summary.patients} patients to {out}/images, "
        f"{out}/manifest.csv and {out}/README.md (fill in the licence before depositing)"
    )
    if not summary.rows and not summary.skipped:
        print("no reviewed studies yet: review some on the worklist first", file=sys.stderr)
    return 3 if summary.skipped else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ex = sub.add_parser(
        "export",
        help="export the reviewed studies as a de-identified research data set",
        description="Write the reviewed studies as PNG images (pixels only), a manifest "
        "that `dxassist train` reads, and a README: no names, IDs, dates or UIDs. Settings "
        "from DXASSIST_* as for `dxassist serve`.",
    )
    ex.add_argument(
        "--deidentified", metavar="OUT", required=True, help="folder to write (new or empty)"
    )
    ex.add_argument("--force", action="store_true", help="replace an earlier export in OUT")
    ex.add_argument("--dataset", help="name in the manifest's dataset column (default: the site)")
    ex.set_defaults(func=cmd_export)
