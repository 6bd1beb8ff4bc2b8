"""What the DICOM builders need from one read: :class:`AiResult`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dxassist.cxr.taxonomy import FINDINGS
from dxassist.cxr.triage import Priority
from dxassist.errors import InputError

if TYPE_CHECKING:
    from dxassist.pipeline import ReadResult


class ResultFormatError(InputError):
    """A read result (e.g. the JSON of ``dxassist read --json``) is not usable."""


@dataclass(frozen=True)
class AiResult:
    """One chest X-ray read, as the SR and heatmap SC report it.

    ``probabilities`` has exactly the keys of ``taxonomy.FINDINGS``, each in [0, 1].
    """

    probabilities: dict[str, float]
    top_finding: str
    priority: str
    heatmap_finding: str | None
    model_name: str
    model_version: str
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        keys = tuple(self.probabilities)
        if set(keys) != set(FINDINGS):
            raise ResultFormatError(
                f"probabilities must have the findings {', '.join(FINDINGS)}; got "
                f"{', '.join(keys) or 'none'}"
            )
        for k, p in self.probabilities.items():
            if isinstance(p, bool) or not isinstance(p, int | float):
                raise ResultFormatError(f"probability of {k} is not a number: {p!r}")
            if not (math.isfinite(p) and 0.0 <= p <= 1.0):
                raise ResultFormatError(f"probability of {k} must be within 0..1, got {p!r}")
        if self.top_finding not in FINDINGS:
            raise ResultFormatError(
                f"top finding {self.top_finding!r} is not one of {', '.join(FINDINGS)}"
            )
        if self.priority not in {str(p) for p in Priority}:
            raise ResultFormatError(
                f"priority {self.priority!r} is not one of {', '.join(str(p) for p in Priority)}"
            )
        if self.heatmap_finding is not None and self.heatmap_finding not in FINDINGS:
            raise ResultFormatError(
                f"heatmap finding {self.heatmap_finding!r} is not one of {', '.join(FINDINGS)}"
            )
        for name, value in (("model name", self.model_name), ("version", self.model_version)):
            if not isinstance(value, str) or not value.strip():
                raise ResultFormatError(f"model {name} must be a non-empty string")
        if not all(isinstance(w, str) for w in self.warnings):
            raise ResultFormatError("warnings must be strings")

    @property
    def abnormal(self) -> float:
        """1 - p(normal): the triage score (probability of any pneumonia)."""
        return 1.0 - float(self.probabilities["normal"])

    @classmethod
    def from_read_json(cls, d: dict[str, Any]) -> AiResult:
        """From the dict that ``dxassist read --json`` prints (``ReadResult.to_json``)."""
        if not isinstance(d, dict):
            raise ResultFormatError(f"a read result must be a JSON object, got {type(d).__name__}")
        missing = [k for k in ("probabilities", "top_finding", "priority", "model") if k not in d]
        if missing:
            raise ResultFormatError(
                f"read result lacks {', '.join(missing)}; pass the output of `dxassist read --json`"
            )
        probs, model = d["probabilities"], d["model"]
        if not isinstance(probs, dict):
            raise ResultFormatError("'probabilities' must be an object of finding: probability")
        if not isinstance(model, dict) or "name" not in model or "version" not in model:
            raise ResultFormatError("'model' must be an object with 'name' and 'version'")
        warnings = d.get("warnings") or []
        if not isinstance(warnings, list):
            raise ResultFormatError("'warnings' must be a list of strings")
        return cls(
            probabilities={str(k): v for k, v in probs.items()},
            top_finding=d["top_finding"],
            priority=d["priority"],
            heatmap_finding=d.get("heatmap_finding"),
            model_name=model["name"],
            model_version=model["version"],
            warnings=list(warnings),
        )

    @classmethod
    def from_read_result(cls, r: ReadResult) -> AiResult:
        """From an in-process read (unrounded probabilities)."""
        return cls(
            probabilities={k: float(v) for k, v in r.reading.probabilities.items()},
            top_finding=r.reading.top_finding,
            priority=str(r.reading.priority),
            heatmap_finding=r.reading.heatmap_finding,
            model_name=r.model.name,
            model_version=r.model.version,
            warnings=list(r.warnings),
        )


def software_versions(result: AiResult) -> list[str]:
    """Software Versions (0018,1020) of the objects dxassist makes: its own and the model's."""
    from dxassist import __version__

    return [f"dxassist {__version__}", f"{result.model_name} {result.model_version}"]
