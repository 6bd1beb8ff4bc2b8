"""Run the shipped chest X-ray model with ONNX Runtime.

One obvious call::

    model = CxrModel.load()            # the model shipped in models/
    reading = model.read(radiograph)   # probabilities, abnormal score, priority, CAM

The ONNX file has one input, ``image`` (N, 1, 224, 224) in [-1, 1], and outputs
``probabilities`` (temperature-scaled softmax), ``logits``, ``cam`` (class-activation maps
from the same forward pass) and ``features``. Its metadata (name, version, temperature,
triage thresholds, validated age range) lives in a JSON file next to it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dxassist.cxr.preprocess import preprocess
from dxassist.cxr.taxonomy import FINDINGS
from dxassist.cxr.triage import Priority, Thresholds, priority_for
from dxassist.errors import ModelError
from dxassist.imaging.radiograph import Radiograph

DEFAULT_MODEL_NAME = "dxassist-cxr-effnetlite0"


def models_dir() -> Path:
    """Where shipped models live: $DXASSIST_MODELS_DIR, else the repository's models/."""
    env = os.environ.get("DXASSIST_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "models"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    findings: tuple[str, ...]
    input_size: int
    temperature: float
    thresholds: Thresholds
    #: half-open [low, high) age ranges in years that the model was validated on
    validated_age_ranges: tuple[tuple[float, float], ...]
    validated_age_groups: tuple[str, ...]
    #: finding → a limit of this model, shown as a warning whenever it is the top finding
    caveats: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelInfo:
        try:
            return cls(
                name=str(data["name"]),
                version=str(data["version"]),
                findings=tuple(data["findings"]),
                input_size=int(data["input"]["size"]),
                temperature=float(data["temperature"]),
                thresholds=Thresholds(
                    priority=float(data["thresholds"]["priority"]),
                    urgent=float(data["thresholds"]["urgent"]),
                ),
                validated_age_ranges=tuple(
                    (float(lo), float(hi)) for lo, hi in data["validated_age_years"]
                ),
                validated_age_groups=tuple(data.get("validated_age_groups", ())),
                caveats={str(k): str(v) for k, v in data.get("caveats", {}).items()},
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelError(f"model metadata is incomplete or malformed ({exc!r})") from exc


@dataclass
class Reading:
    """The model's read of one radiograph."""

    probabilities: dict[str, float]
    abnormal: float
    priority: Priority
    top_finding: str
    heatmap_finding: str
    cam: npt.NDArray[np.float32]  # (h, w), raw class-activation map of heatmap_finding
    timings_ms: dict[str, float] = field(default_factory=dict)


class CxrModel:
    """An ONNX Runtime session plus the model's metadata."""

    def __init__(self, onnx_path: Path, info: ModelInfo, threads: int | None = None) -> None:
        import onnxruntime as ort

        if tuple(info.findings) != FINDINGS:
            raise ModelError(
                f"{onnx_path.name} reports findings {info.findings}, this dxassist expects "
                f"{FINDINGS}; use a model trained by this version"
            )
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load model {onnx_path}: {exc}") from exc
        outputs = [o.name for o in self.session.get_outputs()]
        for needed in ("probabilities", "cam"):
            if needed not in outputs:
                raise ModelError(f"{onnx_path.name} has no '{needed}' output (has {outputs})")
        self.path = onnx_path
        self.info = info

    @classmethod
    def load(cls, name_or_path: str | Path | None = None) -> CxrModel:
        """Load ``models/<name>.onnx`` + ``.json``, or an explicit ``.onnx`` path."""
        if name_or_path is None:
            name_or_path = os.environ.get("DXASSIST_CXR_MODEL", DEFAULT_MODEL_NAME)
        p = Path(name_or_path)
        onnx_path = p if p.suffix == ".onnx" else models_dir() / f"{p.name}.onnx"
        meta_path = onnx_path.with_suffix(".json")
        if not onnx_path.is_file():
            raise ModelError(
                f"model file {onnx_path} not found; set DXASSIST_MODELS_DIR or "
                "DXASSIST_CXR_MODEL, or run from a dxassist checkout that has models/"
            )
        if not meta_path.is_file():
            raise ModelError(f"model metadata {meta_path} not found next to {onnx_path.name}")
        try:
            info = ModelInfo.from_json(json.loads(meta_path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ModelError(f"{meta_path} is not valid JSON: {exc}") from exc
        return cls(onnx_path, info)

    def infer(
        self, batch: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Raw forward pass: (N, 1, S, S) → probabilities (N, 4), CAMs (N, 4, h, w)."""
        probabilities, cam = self.session.run(["probabilities", "cam"], {"image": batch})
        return np.asarray(probabilities, np.float32), np.asarray(cam, np.float32)

    def read(self, radiograph: Radiograph) -> Reading:
        """Preprocess, infer and triage one radiograph."""
        t0 = time.perf_counter()
        x = preprocess(radiograph.pixels, self.info.input_size)[np.newaxis]
        t1 = time.perf_counter()
        probs, cams = self.infer(x)
        t2 = time.perf_counter()
        p = {name: float(probs[0, k]) for k, name in enumerate(FINDINGS)}
        abnormal = float(1.0 - probs[0, 0])
        top = max(p, key=lambda k: p[k])
        # The heatmap shows the evidence for the most likely pneumonia finding: what a
        # radiologist wants to see, even when the film reads normal overall.
        k_map = 1 + int(np.argmax(probs[0, 1:]))
        return Reading(
            probabilities=p,
            abnormal=abnormal,
            priority=priority_for(abnormal, self.info.thresholds),
            top_finding=top,
            heatmap_finding=FINDINGS[k_map],
            cam=cams[0, k_map],
            timings_ms={"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3},
        )
