"""The symptom model: one additive log-linear form for every kind of model.

logits[d] = b[d] + sum over answered symptoms s of W[value(s), d, s];  p = softmax(logits / T)

- ``logreg``: multinomial logistic regression on present / absent / not-sure indicators
  (W are its coefficients), trained with scikit-learn, run here in numpy.
- ``naive_bayes``: W[k, d, s] = log P(answer k | disease d) from the training counts.
- ``kb_bayes``: naive Bayes from a knowledge base (DDXPlus): an evidence linked to a
  condition is present with probability ``p_in``, any other with ``p_out``.

``A[k, d, s]`` = P(the answer to "symptom s?" is k | disease d): the answer model the
interactive mode uses to compute the expected information gain of a question.
Files: ``<name>.npz`` (arrays) + ``<name>.json`` (vocabulary, settings, metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dxassist.assistant.askable import never_asked
from dxassist.assistant.data import YES
from dxassist.errors import ModelError

F = NDArray[np.float64]
#: information gain (nats) below which asking is pointless
MIN_GAIN = 1e-3
#: diseases less likely than this are left out of the information-gain sums
PRUNE = 1e-6


@dataclass
class SymptomModel:
    name: str
    dataset: str
    kind: str
    symptoms: list[str]
    diseases: list[str]
    W: F  # (3, D, S)
    b: F  # (D,)
    A: F  # (3, D, S), sums to 1 over axis 0
    temperature: float = 1.0
    #: stop asking when the top probability reaches this
    stop_threshold: float = 0.9
    max_turns: int = 20
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sym_index = {s: i for i, s in enumerate(self.symptoms)}
        self.dis_index = {d: i for i, d in enumerate(self.diseases)}
        #: terms never proposed as questions (diagnoses and tests; see askable.py)
        self.not_asked: dict[str, str] = never_asked(self.symptoms, self.diseases)
        self._never = {self.sym_index[s] for s in self.not_asked}
        #: sub-question -> the question it depends on (DDXPlus ``code_question``)
        self.parents: dict[str, str] = {
            c: p
            for c, p in dict(self.meta.get("parents", {})).items()
            if c in self.sym_index and p in self.sym_index
        }
        self._parent = {self.sym_index[c]: self.sym_index[p] for c, p in self.parents.items()}
        self._cache_t: float | None = None
        self._wt32: NDArray[np.float32] = np.zeros((0, 0, 0), dtype=np.float32)
        self._at32: NDArray[np.float32] = np.zeros((0, 0, 0), dtype=np.float32)

    # -- scoring ---------------------------------------------------------------------------
    def logits_of(self, answers: dict[int, int]) -> F:
        """Logits from {symptom index: value index}."""
        out = self.b.copy()
        for s, k in answers.items():
            out += self.W[k, :, s]
        return out

    def probs_of_logits(self, logits: F) -> F:
        z = logits / self.temperature
        z = z - z.max()
        e = np.exp(z)
        p: F = e / e.sum()
        return p

    def predict(self, answers: dict[int, int]) -> F:
        return self.probs_of_logits(self.logits_of(answers))

    def predict_matrix(self, M: NDArray[np.int8]) -> F:
        """Probabilities for a batch: M (N, S) with 0/1/2 = yes/no/unsure, -1 = not asked."""
        logits = np.tile(self.b, (M.shape[0], 1))
        for k in range(3):
            onehot = np.asarray(M == k, dtype=np.float64)  # noqa: SIM300
            logits += onehot @ self.W[k].T
        z = logits / self.temperature
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        p: F = e / e.sum(axis=1, keepdims=True)
        return p

    def _scaled(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """W / T as (3, S, D) float32 and A as (3, S, D) float32, cached per temperature."""
        if self._cache_t != self.temperature:
            self._wt32 = np.ascontiguousarray(
                (self.W.transpose(0, 2, 1) / self.temperature).astype(np.float32)
            )
            self._at32 = np.ascontiguousarray(self.A.transpose(0, 2, 1).astype(np.float32))
            self._cache_t = self.temperature
        return self._wt32, self._at32

    def gains(self, logits: F, asked: set[int] | None = None) -> F:
        """Expected information gain (nats) of asking each symptom; -inf for asked ones.

        Computed in float32 (the ranking of questions is what matters; differences from
        float64 are ~1e-6 nats). Diseases below ``PRUNE`` probability are left out of the
        sums (their share of the entropy is negligible)."""
        wt, at = self._scaled()
        p = self.probs_of_logits(logits)
        keep = np.flatnonzero(p >= PRUNE)
        if len(keep) < 2:
            keep = np.argsort(-p)[:2]
        lt = (logits / self.temperature).astype(np.float32)
        if len(keep) < len(p):
            p = p[keep] / p[keep].sum()
            wt, at, lt = wt[:, :, keep], at[:, :, keep], lt[keep]
        h = float(-(p * np.log(p + 1e-300)).sum())
        p32 = p.astype(np.float32)
        z = lt[None, None, :] + wt  # (3, S, D): logits after each possible answer
        z -= z.max(axis=2, keepdims=True)
        e = np.exp(z)
        Z = e.sum(axis=2)
        # entropy of softmax(z) = log Z - sum(e z) / Z (no log of every probability)
        hk = np.log(Z) - np.einsum("ksd,ksd->ks", e, z) / Z  # (3, S)
        pk = at @ p32  # (3, S): P(answer k to s)
        gain: F = (h - (pk * hk).sum(axis=0)).astype(np.float64)
        if asked:
            gain[list(asked)] = -np.inf
        return gain

    def unaskable(self, answers: dict[int, int]) -> set[int]:
        """Symptoms not to ask now: answered ones, diagnoses and tests, and sub-questions
        whose parent question has not been answered yes."""
        out = set(answers) | self._never
        out.update(c for c, p in self._parent.items() if answers.get(p) != YES)
        return out

    def question_gains(self, logits: F, answers: dict[int, int]) -> F:
        """:meth:`gains` of the questions that may be asked now (-inf for the rest)."""
        return self.gains(logits, self.unaskable(answers))

    # -- files -----------------------------------------------------------------------------
    def save(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        npz = folder / f"{self.name}.npz"
        meta = folder / f"{self.name}.json"
        np.savez_compressed(
            npz,
            W=self.W.astype(np.float32),
            b=self.b.astype(np.float32),
            A=self.A.astype(np.float32),
        )
        doc = {
            "name": self.name,
            "dataset": self.dataset,
            "kind": self.kind,
            "temperature": self.temperature,
            "stop_threshold": self.stop_threshold,
            "max_turns": self.max_turns,
            "symptoms": self.symptoms,
            "diseases": self.diseases,
            "meta": self.meta,
        }
        meta.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return npz, meta

    @classmethod
    def load(cls, folder: Path, name: str) -> SymptomModel:
        npz, meta = folder / f"{name}.npz", folder / f"{name}.json"
        if not npz.is_file() or not meta.is_file():
            raise ModelError(
                f"symptom model {name} not found in {folder}; train it with "
                f"`dxassist assist train --dataset {name.removeprefix('dxassist-assist-')}` "
                "or set DXASSIST_MODELS_DIR"
            )
        try:
            doc = json.loads(meta.read_text(encoding="utf-8"))
            with np.load(npz) as arrays:
                W = arrays["W"].astype(np.float64)
                b = arrays["b"].astype(np.float64)
                A = arrays["A"].astype(np.float64)
            model = cls(
                name=doc["name"],
                dataset=doc["dataset"],
                kind=doc["kind"],
                symptoms=list(doc["symptoms"]),
                diseases=list(doc["diseases"]),
                W=W,
                b=b,
                A=A,
                temperature=float(doc["temperature"]),
                stop_threshold=float(doc["stop_threshold"]),
                max_turns=int(doc["max_turns"]),
                meta=dict(doc.get("meta", {})),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"symptom model {name} in {folder} is unreadable: {exc}") from exc
        D, S = len(model.diseases), len(model.symptoms)
        if model.W.shape != (3, D, S) or model.A.shape != (3, D, S) or model.b.shape != (D,):
            raise ModelError(f"symptom model {name}: array shapes do not match its vocabulary")
        return model
