"""Train and choose a symptom model per benchmark on its validation split (never test).

Candidates: naive Bayes from the training counts (smoothing alpha) and multinomial logistic
regression on present/absent/not-sure indicators (inverse regularisation C), trained on
states a consultation passes through (explicit only; explicit + a random half of the
implicit; everything). Each candidate gets a temperature fitted on validation, then the
one with the best validation interactive accuracy wins (ties: full-information accuracy).
The stop threshold is the one with the fewest validation turns whose accuracy is within
one point of the best. The winner is refitted on train + validation with the same
settings. DDXPlus has no training data: its model is built from the knowledge files with
fixed, untuned settings.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dxassist.assistant.data import NO, UNSURE, YES, Benchmark, Case
from dxassist.assistant.model import SymptomModel
from dxassist.assistant.simulate import labels, matrix, run_episode, topk_hits

SEED = 20261204
NB_ALPHAS = (0.5, 1.0, 2.0)
LR_CS = (0.1, 0.3, 1.0, 3.0)
THRESHOLDS = (0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
MAX_TURNS = 20
#: most validation cases used for the (slow) interactive selection
VAL_INTERACTIVE_CAP = 800
#: DDXPlus knowledge-base model: chosen a priori, not tuned (there is no validation data)
KB_P_IN, KB_P_OUT = 0.5, 0.01
ANSWER_ALPHA = 1.0
#: unmentioned symptoms answered "not sure" in the fourth training state of a case
UNSURE_ASKED = 5


def model_name(dataset: str) -> str:
    return f"dxassist-assist-{dataset}"


def counts(bench: Benchmark, cases: list[Case]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """n[k, d, s] = cases of disease d whose record has value k for s; N[d] = cases of d."""
    si, di = bench.symptom_index(), bench.disease_index()
    n = np.zeros((3, len(bench.diseases), len(bench.symptoms)))
    N = np.zeros(len(bench.diseases))
    for c in cases:
        d = di.get(c.disease)
        if d is None:
            continue
        N[d] += 1
        for s, v in c.all_symptoms().items():
            if s in si:
                n[v, d, si[s]] += 1
    return n, N


def answer_model(n: NDArray[np.float64], N: NDArray[np.float64]) -> NDArray[np.float64]:
    """P(answer | disease) when asked: yes / no as recorded; not mentioned -> not sure."""
    a = ANSWER_ALPHA
    total = N[None, :, None] + 3 * a
    yes = (n[YES] + a) / total[0]
    no = (n[NO] + a) / total[0]
    unsure = 1.0 - yes - no
    out: NDArray[np.float64] = np.stack([yes, no, unsure])
    return out


def naive_bayes(bench: Benchmark, cases: list[Case], alpha: float) -> SymptomModel:
    n, N = counts(bench, cases)
    total = N[None, :, None] + 3 * alpha
    yes = (n[YES] + alpha) / total[0]
    no = (n[NO] + alpha) / total[0]
    unsure = (N[:, None] - n[YES] - n[NO] + alpha) / total[0]
    W = np.log(np.stack([yes, no, unsure]))
    b = np.log((N + 1) / (N.sum() + len(N)))
    return SymptomModel(
        name=model_name(bench.name),
        dataset=bench.name,
        kind="naive_bayes",
        symptoms=list(bench.symptoms),
        diseases=list(bench.diseases),
        W=W,
        b=b,
        A=answer_model(n, N),
        meta={"alpha": alpha},
    )


def _states(bench: Benchmark, cases: list[Case], rng: np.random.Generator) -> tuple[Any, Any]:
    """One-hot (3S) features of explicit-only, partial and full states, and their labels."""
    from scipy import sparse

    si, di = bench.symptom_index(), bench.disease_index()
    S = len(bench.symptoms)
    freq = np.zeros(S)
    for c in cases:
        for s in c.all_symptoms():
            if s in si:
                freq[si[s]] += 1
    freq = freq / max(1.0, freq.sum())
    rows, cols, y = [], [], []
    r = 0
    for c in cases:
        if c.disease not in di:
            continue
        exp = {s: v for s, v in c.explicit.items() if s in si}
        imp = {s: v for s, v in c.implicit.items() if s in si and s not in exp}
        keys = list(imp)
        half = {s: imp[s] for s in keys if rng.random() < 0.5}
        # as in an interview: common symptoms this case does not mention answered "not sure"
        record = {**imp, **exp}
        n_ask = min(UNSURE_ASKED, int((freq > 0).sum()))
        picked: list[int] = (
            rng.choice(S, size=n_ask, replace=False, p=freq).tolist() if n_ask else []
        )
        unsure = {bench.symptoms[i]: UNSURE for i in picked if bench.symptoms[i] not in record}
        for state in (exp, {**half, **exp}, {**imp, **exp}, {**unsure, **half, **exp}):
            for s, v in state.items():
                rows.append(r)
                cols.append(v * S + si[s])
            y.append(di[c.disease])
            r += 1
    X = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(r, 3 * S))
    return X, np.array(y)


def logistic(bench: Benchmark, cases: list[Case], C: float) -> SymptomModel:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(SEED)
    X, y = _states(bench, cases, rng)
    D, S = len(bench.diseases), len(bench.symptoms)
    clf = LogisticRegression(C=C, max_iter=2000, tol=1e-5)
    clf.fit(X, y)
    coef = np.zeros((D, 3 * S))
    bias = np.full(D, -30.0)  # a disease absent from training is never predicted
    coef[clf.classes_] = clf.coef_ if D > 2 else np.vstack([-clf.coef_, clf.coef_])
    bias[clf.classes_] = clf.intercept_ if D > 2 else np.array([-1, 1]) * clf.intercept_
    W = coef.reshape(D, 3, S).transpose(1, 0, 2).copy()
    n, N = counts(bench, cases)
    return SymptomModel(
        name=model_name(bench.name),
        dataset=bench.name,
        kind="logreg",
        symptoms=list(bench.symptoms),
        diseases=list(bench.diseases),
        W=W,
        b=bias,
        A=answer_model(n, N),
        meta={"C": C, "training_states": int(X.shape[0]), "unsure_asked": UNSURE_ASKED},
    )


def kb_bayes(bench: Benchmark) -> SymptomModel:
    conds = bench.knowledge["conditions"]
    si = bench.symptom_index()
    D, S = len(bench.diseases), len(bench.symptoms)
    p = np.full((D, S), KB_P_OUT)
    for d, name in enumerate(bench.diseases):
        for e in conds[name]["symptoms"] + conds[name]["antecedents"]:
            if e in si:
                p[d, si[e]] = KB_P_IN
    W = np.stack([np.log(p), np.log(1 - p), np.zeros((D, S))])
    A = np.stack([p, 1 - p, np.zeros((D, S))])
    return SymptomModel(
        name=model_name(bench.name),
        dataset=bench.name,
        kind="kb_bayes",
        symptoms=list(bench.symptoms),
        diseases=list(bench.diseases),
        W=W,
        b=np.zeros(D),
        A=A,
        stop_threshold=0.9,
        max_turns=MAX_TURNS,
        meta={"p_in": KB_P_IN, "p_out": KB_P_OUT, "prior": "uniform"},
    )


def fit_temperature(model: SymptomModel, cases: list[Case]) -> float:
    """The temperature minimising validation log loss over explicit-only and full states."""
    M = np.vstack([matrix(model, cases, "explicit"), matrix(model, cases, "full")])
    y = np.concatenate([labels(model, cases)] * 2)
    keep = y >= 0
    M, y = M[keep], y[keep]
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 49)):
        p = replace(model, temperature=float(t)).predict_matrix(M)
        nll = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
        if nll < best_nll:
            best_t, best_nll = float(t), float(nll)
    return best_t


def interactive_accuracy(
    model: SymptomModel, cases: list[Case], unmentioned: int, threshold: float
) -> tuple[float, float]:
    hits, turns = 0, 0
    for c in cases:
        ep = run_episode(model, c, unmentioned, threshold=threshold, max_turns=MAX_TURNS)
        hits += int(np.argmax(ep.probs)) == model.dis_index.get(c.disease, -2)
        turns += ep.turns
    return hits / max(1, len(cases)), turns / max(1, len(cases))


def _val_subset(cases: list[Case]) -> list[Case]:
    if len(cases) <= VAL_INTERACTIVE_CAP:
        return cases
    rng = np.random.default_rng(SEED)
    idx = sorted(rng.choice(len(cases), VAL_INTERACTIVE_CAP, replace=False).tolist())
    return [cases[i] for i in idx]


def train(bench: Benchmark, log: Any = print) -> SymptomModel:
    """The chosen, calibrated, refitted model of ``bench`` with its selection record."""
    t0 = time.time()
    if not bench.train:
        model = kb_bayes(bench)
        model.meta.update(
            {
                "selection": "none: no training or validation data; knowledge-base model "
                "with a-priori settings (p_in, p_out, uniform prior, threshold 0.9)",
                "licence": bench.licence,
            }
        )
        return model
    val_i = _val_subset(bench.val)
    candidates: list[dict[str, Any]] = []
    builds: list[tuple[str, float]] = [("naive_bayes", a) for a in NB_ALPHAS]
    builds += [("logreg", c) for c in LR_CS]
    for kind, hp in builds:
        m = naive_bayes(bench, bench.train, hp) if kind == "naive_bayes" else None
        if m is None:
            m = logistic(bench, bench.train, hp)
        m.temperature = fit_temperature(m, bench.val)
        y = labels(m, bench.val)
        full = float(topk_hits(m.predict_matrix(matrix(m, bench.val, "full")), y, 1).mean())
        expl = float(topk_hits(m.predict_matrix(matrix(m, bench.val, "explicit")), y, 1).mean())
        acc, turns = interactive_accuracy(m, val_i, bench.unmentioned_answer, 0.9)
        row = {
            "kind": kind,
            "hyperparameter": hp,
            "temperature": round(m.temperature, 4),
            "val_full_top1": round(full, 4),
            "val_explicit_top1": round(expl, 4),
            "val_interactive_top1": round(acc, 4),
            "val_interactive_turns": round(turns, 2),
        }
        log(f"  {bench.name}: {row}")
        candidates.append({**row, "_model": m})
    best = max(candidates, key=lambda r: (r["val_interactive_top1"], r["val_full_top1"]))
    chosen: SymptomModel = best["_model"]
    sweep = []
    for th in THRESHOLDS:
        acc, turns = interactive_accuracy(chosen, val_i, bench.unmentioned_answer, th)
        sweep.append({"threshold": th, "val_interactive_top1": acc, "val_turns": turns})
    top = max(r["val_interactive_top1"] for r in sweep)
    pick = min((r for r in sweep if r["val_interactive_top1"] >= top - 0.01),
               key=lambda r: (r["val_turns"], -r["val_interactive_top1"]))  # fmt: skip
    log(f"  {bench.name}: chose {best['kind']} {best['hyperparameter']}; threshold {pick}")
    everything = bench.train + bench.val
    if best["kind"] == "naive_bayes":
        final = naive_bayes(bench, everything, best["hyperparameter"])
    else:
        final = logistic(bench, everything, best["hyperparameter"])
    final.temperature = chosen.temperature
    final.stop_threshold = float(pick["threshold"])
    final.max_turns = MAX_TURNS
    final.meta.update(
        {
            "selection": "best validation interactive top-1 (ties: full-information top-1); "
            "refitted on train + validation",
            "candidates": [{k: v for k, v in r.items() if k != "_model"} for r in candidates],
            "threshold_sweep": sweep,
            "val_cases": len(bench.val),
            "val_interactive_cases": len(val_i),
            "train_cases": len(bench.train),
            "seed": SEED,
            "licence": bench.licence,
            "train_seconds": round(time.time() - t0, 1),
        }
    )
    return final


__all__ = ["UNSURE", "kb_bayes", "logistic", "model_name", "naive_bayes", "train"]


def attach_runtime(model: SymptomModel, bench: Benchmark) -> SymptomModel:
    """Store what the runtime needs besides the arrays: lexicon, names, questions, severity."""
    from dxassist.assistant.lexicon import Lexicon

    lex = Lexicon.for_benchmark(bench)
    model.meta["lexicon"] = dict(sorted(lex.terms.items()))
    model.meta["symptom_names"] = {s: lex.names.get(s, s) for s in bench.symptoms}
    model.meta["disease_names"] = {
        d: (f"{d} ({bench.disease_en[d]})" if bench.disease_en.get(d, d) != d else d)
        for d in bench.diseases
    }
    if bench.name == "ddxplus":
        conds = bench.knowledge["conditions"]
        model.meta["questions"] = bench.knowledge["questions"]
        model.meta["parents"] = bench.knowledge.get("parents", {})
        model.meta["severity"] = {d: conds[d]["severity"] for d in bench.diseases}
        from dxassist.assistant.glossary import DDXPLUS_TERMS

        short: dict[str, str] = {}
        for phrase, code in DDXPLUS_TERMS.items():
            short.setdefault(code, phrase)
        model.meta["symptom_names"] = {
            e: f"{short[e]} ({e})" if e in short else bench.knowledge["questions"][e]
            for e in bench.symptoms
        }
    model.meta["dataset_title"] = bench.title
    model.meta["citation"] = bench.citation
    model.meta["licence"] = bench.licence
    return model
