"""``POST /api/v1/assist``: symptoms and/or free text in, a differential and the next
questions out. Any signed-in user may use it (clinician tools; no clinician role yet)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, field_validator

from dxassist.accounts.permissions import Permission
from dxassist.assistant.cli import default_note
from dxassist.assistant.data import (
    DATASET_INFO,
    DATASETS,
    DEFAULT_DATASET,
    VALUE_ALIASES,
    default_dataset,
    describe,
)
from dxassist.assistant.engine import MAX_SYMPTOMS, MAX_TEXT, get_assistant
from dxassist.errors import DxAssistError, InputError, ModelError
from dxassist.store.models import User
from dxassist.web.deps import allow

router = APIRouter(prefix="/api/v1", tags=["assistant"])
SignedIn = Annotated[User, allow(Permission.ASSIST)]


class AssistRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str | None = Field(
        default=None,
        description=f"one of {', '.join(DATASETS)}; default {DEFAULT_DATASET} (gmd12 when the "
        "text is Chinese)",
        max_length=32,
    )
    symptoms: dict[str, str] = Field(
        default_factory=dict, description="symptom code (or English name) -> yes / no / unsure"
    )
    answered: dict[str, str] = Field(
        default_factory=dict,
        description="answers to the assistant's questions so far (same form as symptoms)",
    )
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Literal["F", "M"] | None = None
    top: int = Field(default=5, ge=1, le=100)
    questions: int = Field(default=3, ge=0, le=20)

    @field_validator("symptoms", "answered")
    @classmethod
    def _bounded(cls, v: dict[str, str]) -> dict[str, str]:
        if len(v) > MAX_SYMPTOMS:
            raise ValueError(f"at most {MAX_SYMPTOMS} symptoms")
        for key, value in v.items():
            if len(key) > 200:
                raise ValueError("a symptom code is at most 200 characters")
            if str(value).strip().lower() not in VALUE_ALIASES:
                raise ValueError(f"{key!r}: value {value!r} must be yes, no or unsure")
        return v


def _assistant(dataset: str) -> Any:
    try:
        return get_assistant(dataset)
    except ModelError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from exc
    except InputError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc


@router.post("/assist")
async def assist(body: AssistRequest, _user: SignedIn) -> Response:
    """A ranked differential (probabilities; DDXPlus assumes equal prevalence), the text
    mappings, red flags (DDXPlus severity) and the next questions by information gain.

    Async on purpose: an opinion is a fraction of a millisecond of numpy, cheaper than the
    hop to the thread pool a plain function would take."""
    assistant = _assistant(body.dataset or default_dataset(body.text))
    symptoms = {**body.symptoms, **body.answered}
    try:
        op = assistant.opinion(
            symptoms, body.text, age=body.age, sex=body.sex, top=body.top,
            n_questions=body.questions,
        )  # fmt: skip
    except DxAssistError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
    out = op.as_dict()
    if not body.dataset:
        out["notes"].insert(0, default_note(assistant.dataset).replace("--dataset", "`dataset`"))
    # serialised here: the opinion is plain JSON data, and skipping FastAPI's generic encoder
    # keeps the request cheap (see bench/assist_throughput.py)
    return Response(
        json.dumps(out, ensure_ascii=False, allow_nan=False),
        media_type="application/json",
    )


@router.get("/assist/datasets")
def datasets(_user: SignedIn) -> dict[str, Any]:
    """The datasets with a model installed: titles, populations, languages; the default
    comes first."""
    rows = []
    for name in sorted(DATASETS, key=lambda n: n != DEFAULT_DATASET):
        try:
            a = get_assistant(name)
        except DxAssistError:
            continue
        rows.append(
            {
                "dataset": name,
                "title": a.model.meta.get("dataset_title", name),
                "symptoms": len(a.model.symptoms),
                "diseases": len(a.model.diseases),
                "label": DATASET_INFO[name].label,
                "population": DATASET_INFO[name].population,
                "language": DATASET_INFO[name].language,
                "source": DATASET_INFO[name].source,
                "description": describe(name),
                "default": name == DEFAULT_DATASET,
            }
        )
    return {"datasets": rows}


@router.get("/assist/datasets/{dataset}/symptoms")
def symptoms(dataset: str, _user: SignedIn) -> dict[str, Any]:
    """The symptom vocabulary of ``dataset`` (codes, display names, questions)."""
    assistant = _assistant(dataset)
    return {"dataset": assistant.dataset, "symptoms": assistant.vocabulary()}
