"""Train the chest X-ray model (PyTorch, CPU) and export it to ONNX.

The whole path a hospital would run on its own export:

    manifest.csv + images → load (dxassist.imaging) → preprocess (shared with the runtime)
    → cache → fine-tune EfficientNet-Lite0 → early stopping on val → temperature scaling on
    val → operating points on val → ONNX export (+ parity check) → model metadata JSON.

The test split is never read here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from dxassist.cxr.manifest import ManifestRow, read_manifest
from dxassist.cxr.metrics import roc_auc, threshold_for_sensitivity, threshold_for_specificity
from dxassist.cxr.network import BACKBONE, FROZEN_BLOCKS, CxrNet, ExportWrapper
from dxassist.cxr.preprocess import INPUT_SIZE, preprocess
from dxassist.cxr.taxonomy import FINDINGS
from dxassist.errors import InputError
from dxassist.imaging import load_file

log = logging.getLogger(__name__)

#: Age range (years) each manifest age group stands for. Kermany's children are 1-5 years
#: old; the adult sources do not state a range, so "adult" is taken as 18-100.
AGE_RANGES: dict[str, tuple[float, float]] = {"pediatric": (1.0, 6.0), "adult": (18.0, 100.0)}


@dataclass
class TrainConfig:
    manifest: Path
    image_root: Path
    out_dir: Path
    epochs: int = 8
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 20261203
    max_minutes: float = 60.0
    patience: int = 3
    limit_per_split: int | None = None
    cache_dir: Path | None = None
    resume: bool = False
    model_name: str = "dxassist-cxr-effnetlite0"
    model_version: str = "0.0.0-dev"
    #: weight each film so that within a label every data source counts equally (e.g. the
    #: 321 adult NIH normals as much as the 1,210 Kermany children), against the shortcut
    #: of telling labels apart by the hospital a film came from
    balance_sources: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- data


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_split(
    rows: list[ManifestRow], cache_dir: Path | None, tag: str
) -> tuple[npt.NDArray[np.float16], npt.NDArray[np.int64]]:
    """Load and preprocess every image of ``rows`` (cached as float16 on disk)."""
    key = hashlib.sha1(
        ("\n".join(str(r.path) for r in rows) + f"|{INPUT_SIZE}|v1").encode()
    ).hexdigest()[:16]
    cache = cache_dir / f"{tag}-{key}.npy" if cache_dir is not None else None
    targets = np.array([r.target for r in rows], dtype=np.int64)
    if cache is not None and cache.exists():
        return np.load(cache), targets
    from tqdm import tqdm

    images = np.empty((len(rows), 1, INPUT_SIZE, INPUT_SIZE), dtype=np.float16)
    for i, row in enumerate(tqdm(rows, desc=f"load {tag}", unit="img")):
        images[i] = preprocess(load_file(row.path).pixels)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, images)
    return images, targets


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Radiograph-appropriate augmentation on a batch in [-1, 1].

    Small rotation (±7°), scale (0.9–1.1) and translation (±6 %), then contrast, brightness
    and gamma jitter. No left-right flip: the heart and the aortic knob are on the left,
    and a flipped film is anatomically wrong (dextrocardia aside).
    """
    n = x.shape[0]

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    angle = u(-7.0, 7.0) * math.pi / 180.0
    scale = u(0.9, 1.1)
    tx, ty = u(-0.06, 0.06), u(-0.06, 0.06)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], dim=1), torch.stack([sin, cos, ty], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x01 = (x + 1.0) / 2.0
    x01 = F.grid_sample(x01, grid, padding_mode="border", align_corners=False)
    gamma = torch.exp(u(-0.25, 0.25)).view(n, 1, 1, 1)
    x01 = x01.clamp(0, 1) ** gamma
    contrast = u(0.85, 1.15).view(n, 1, 1, 1)
    brightness = u(-0.08, 0.08).view(n, 1, 1, 1)
    x01 = ((x01 - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)
    return x01 * 2.0 - 1.0


# ---------------------------------------------------------------------------- loss


def class_weights(targets: npt.NDArray[np.int64]) -> torch.Tensor:
    """Inverse-frequency weights for the four findings (untyped pneumonia counted apart)."""
    counts = Counter(int(t) for t in targets if t >= 0)
    total = sum(counts.values())
    w = [total / (len(FINDINGS) * max(counts.get(k, 0), 1)) for k in range(len(FINDINGS))]
    return torch.tensor(w, dtype=torch.float32)


def untyped_weight(targets: npt.NDArray[np.int64]) -> float:
    """Weight for untyped-pneumonia rows, as if they were one more class."""
    n_untyped = int((targets < 0).sum())
    total = int((targets >= 0).sum())
    return total / (len(FINDINGS) * n_untyped) if n_untyped else 0.0


def source_balance_weights(rows: list[ManifestRow]) -> npt.NDArray[np.float32]:
    """Per-film weights under which, within each label, every source weighs the same.

    A film of label L from source S gets ``n_L / (k_L * n_LS)`` (k_L: sources with label
    L), so the weights of each label still sum to its count and class weighting is kept.
    """
    by_label = Counter(r.label for r in rows)
    by_cell = Counter((r.label, r.dataset) for r in rows)
    sources = Counter(label for label, _ in by_cell)
    return np.array(
        [by_label[r.label] / (sources[r.label] * by_cell[(r.label, r.dataset)]) for r in rows],
        dtype=np.float32,
    )


def mixed_nll(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    w_untyped: float = 1.0,
    sample_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy for typed labels; -log(p_bact + p_viral + p_covid) for untyped ones.

    `weights` are per class, `w_untyped` for untyped rows, `sample_weights` per row (e.g.
    :func:`source_balance_weights`); the loss is their weighted mean."""
    logp = torch.log_softmax(logits, dim=1)
    typed = targets >= 0
    losses = torch.zeros(len(targets), dtype=logits.dtype)
    wts = torch.ones(len(targets), dtype=logits.dtype)
    if typed.any():
        t = targets[typed]
        losses[typed] = -logp[typed].gather(1, t.unsqueeze(1)).squeeze(1)
        if weights is not None:
            wts[typed] = weights[t]
    if (~typed).any():
        losses[~typed] = -torch.logsumexp(logp[~typed][:, 1:], dim=1)
        wts[~typed] = w_untyped
    if sample_weights is not None:
        wts = wts * sample_weights.to(wts.dtype)
    return (losses * wts).sum() / wts.sum()


# ---------------------------------------------------------------------------- eval


@torch.no_grad()
def predict_logits(
    net: nn.Module, images: npt.NDArray[np.float16], batch: int = 64
) -> torch.Tensor:
    net.eval()
    out = [
        net(torch.from_numpy(images[i : i + batch].astype(np.float32)))
        for i in range(0, len(images), batch)
    ]
    return torch.cat(out) if out else torch.zeros((0, len(FINDINGS)))


def val_metrics(logits: torch.Tensor, targets: npt.NDArray[np.int64]) -> dict[str, float]:
    p = torch.softmax(logits, dim=1).numpy()
    abnormal = 1.0 - p[:, 0]
    is_abnormal = targets != 0
    out: dict[str, float] = {
        "loss": float(mixed_nll(logits, torch.from_numpy(targets))),
        "auc_abnormal": roc_auc(is_abnormal, abnormal),
    }
    typed = targets >= 0
    aucs = []
    for k, name in enumerate(FINDINGS):
        y = targets[typed] == k
        if 0 < y.sum() < len(y):
            auc = roc_auc(y, p[typed, k])
            out[f"auc_{name}"] = auc
            aucs.append(auc)
    out["macro_auc"] = float(np.mean(aucs)) if aucs else float("nan")
    out["accuracy"] = float((p[typed].argmax(1) == targets[typed]).mean()) if typed.any() else 0.0
    return out


def fit_temperature(logits: torch.Tensor, targets: npt.NDArray[np.int64]) -> float:
    """Temperature minimising the val NLL (Guo et al., ICML 2017)."""
    log_t = torch.zeros(1, requires_grad=True)
    t = torch.from_numpy(targets)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = mixed_nll(logits / log_t.exp(), t)
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    return float(log_t.exp().item())


# ---------------------------------------------------------------------------- train


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run the full training; returns the metadata written next to the ONNX file."""
    from tqdm import tqdm

    torch.set_num_threads(max(1, torch.get_num_threads()))
    _seed_everything(cfg.seed)
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + cfg.max_minutes * 60.0

    rows = read_manifest(cfg.manifest, cfg.image_root)
    by_split = {s: [r for r in rows if r.split == s] for s in ("train", "val")}
    if cfg.limit_per_split:
        rng = random.Random(cfg.seed)
        by_split = {s: rng.sample(v, min(cfg.limit_per_split, len(v))) for s, v in by_split.items()}
    for s, v in by_split.items():
        if not v:
            raise InputError(
                f"{cfg.manifest} has no usable {s} rows (frontal views with known labels); "
                "training needs both a train and a val split"
            )
    x_train, y_train = load_split(by_split["train"], cfg.cache_dir, "train")
    x_val, y_val = load_split(by_split["val"], cfg.cache_dir, "val")
    log.info("train %d images, val %d images", len(x_train), len(x_val))

    net = CxrNet(pretrained=True)
    net.freeze_early_layers()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    weights = class_weights(y_train)
    w_untyped = untyped_weight(y_train)
    sample_w = (
        torch.from_numpy(source_balance_weights(by_split["train"])) if cfg.balance_sources else None
    )
    ckpt_path = cfg.out_dir / "checkpoint.pt"
    best_path = cfg.out_dir / "best.pt"
    history: list[dict[str, float]] = []
    start_epoch, best_score, bad_epochs = 0, -math.inf, 0
    if cfg.resume and ckpt_path.exists():
        state = torch.load(ckpt_path, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        start_epoch, best_score, bad_epochs = state["epoch"] + 1, state["best"], state["bad"]
        if state["sched"]["total_steps"] == cfg.epochs * steps_per_epoch:
            sched.load_state_dict(state["sched"])
        else:  # more (or fewer) epochs asked for: stretch the schedule from here on
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt,
                max_lr=cfg.lr,
                total_steps=cfg.epochs * steps_per_epoch,
                pct_start=0.15,
                last_epoch=start_epoch * steps_per_epoch - 1,
            )
        history = state["history"]
        started -= 60.0 * float(state.get("minutes", 0.0))
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed after epoch %d", state["epoch"] + 1)

    gen = torch.Generator().manual_seed(cfg.seed)
    stopped = "epochs done"
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=gen).numpy()
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step")
        running = 0.0
        for step in bar:
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            xb = augment(torch.from_numpy(x_train[idx].astype(np.float32)), gen)
            yb = torch.from_numpy(y_train[idx])
            wb = sample_w[torch.from_numpy(idx)] if sample_w is not None else None
            loss = mixed_nll(net(xb), yb, weights, w_untyped, wb)
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            sched.step()
            running = 0.9 * running + 0.1 * loss.item() if step else loss.item()
            bar.set_postfix(loss=f"{running:.3f}")
            if time.monotonic() > deadline:
                break
        metrics = val_metrics(predict_logits(net, x_val), y_val)
        metrics["epoch"] = epoch + 1
        history.append(metrics)
        print(
            f"epoch {epoch + 1}: train loss {running:.3f}  val loss {metrics['loss']:.3f}  "
            f"val macro-AUC {metrics['macro_auc']:.3f}  val abnormal AUC "
            f"{metrics['auc_abnormal']:.3f}  val acc {metrics['accuracy']:.3f}",
            flush=True,
        )
        score = metrics["macro_auc"] if not math.isnan(metrics["macro_auc"]) else -metrics["loss"]
        if score > best_score:
            best_score, bad_epochs = score, 0
            torch.save(net.state_dict(), best_path)
        else:
            bad_epochs += 1
        torch.save(
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "sched": sched.state_dict(),
                "epoch": epoch,
                "best": best_score,
                "bad": bad_epochs,
                "history": history,
                "torch_rng": torch.get_rng_state(),
                "minutes": (time.monotonic() - started) / 60.0,
            },
            ckpt_path,
        )
        if bad_epochs >= cfg.patience:
            stopped = f"early stopping after epoch {epoch + 1}"
            break
        if time.monotonic() > deadline:
            stopped = f"time budget of {cfg.max_minutes} min reached in epoch {epoch + 1}"
            break

    net.load_state_dict(torch.load(best_path))
    val_logits = predict_logits(net, x_val)
    temperature = fit_temperature(val_logits, y_val)
    calibrated = torch.softmax(val_logits / temperature, dim=1).numpy()
    abnormal = 1.0 - calibrated[:, 0]
    is_abnormal = y_val != 0
    thresholds = {
        # priority: catch 95 % of abnormal films on val; urgent: 95 % specificity on val
        "priority": threshold_for_sensitivity(is_abnormal, abnormal, 0.95),
        "urgent": threshold_for_specificity(is_abnormal, abnormal, 0.95),
    }
    thresholds["urgent"] = max(thresholds["urgent"], thresholds["priority"])
    onnx_path = cfg.out_dir / f"{cfg.model_name}.onnx"
    export_onnx(net, temperature, onnx_path)
    parity = check_onnx_parity(net, temperature, onnx_path, x_val[:16])
    age_groups = sorted({r.age_group for r in by_split["train"] if r.age_group != "unknown"})
    meta: dict[str, Any] = {
        "name": cfg.model_name,
        "version": cfg.model_version,
        "architecture": f"{BACKBONE} (ImageNet-pretrained, stem + first {FROZEN_BLOCKS} "
        "blocks frozen), linear head on global-average-pooled features",
        "findings": list(FINDINGS),
        "input": {"size": INPUT_SIZE, "channels": 1, "range": [-1.0, 1.0]},
        "temperature": temperature,
        "thresholds": thresholds,
        "validated_age_groups": age_groups,
        "validated_age_years": [list(AGE_RANGES[g]) for g in age_groups if g in AGE_RANGES],
        "training": {
            "manifest": str(cfg.manifest),
            "train_images": len(x_train),
            "val_images": len(x_val),
            "train_label_counts": dict(Counter(r.label for r in by_split["train"])),
            "epochs_run": len(history),
            "stopped": stopped,
            "minutes": round((time.monotonic() - started) / 60.0, 1),
            "seed": cfg.seed,
            "history": history,
            "onnx_max_abs_diff": parity,
            "config": {k: str(v) for k, v in asdict(cfg).items()},
        },
    }
    (cfg.out_dir / f"{cfg.model_name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def export_onnx(net: CxrNet, temperature: float, path: Path) -> None:
    net.eval()
    wrapper = ExportWrapper(net, temperature).eval()
    dummy = torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(
        wrapper,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["probabilities", "logits", "cam", "features"],
        dynamic_axes={
            "image": {0: "batch"},
            "probabilities": {0: "batch"},
            "logits": {0: "batch"},
            "cam": {0: "batch"},
            "features": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


def check_onnx_parity(
    net: CxrNet, temperature: float, path: Path, images: npt.NDArray[np.float16]
) -> float:
    """Largest difference between PyTorch and ONNX Runtime outputs on real images.

    Probabilities and logits must agree within 1e-4 absolute. The class-activation maps
    are unnormalised sums over 1280 channels (magnitudes in the tens), so they are held to
    1e-4 relative to their largest magnitude: float32 rounding alone exceeds 1e-4 absolute.
    Returns the largest absolute difference in probabilities/logits.
    """
    import onnxruntime as ort

    x = images.astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in ExportWrapper(net, temperature).eval()(torch.from_numpy(x))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ref[:2], got[:2], strict=True))
    if diff > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch probabilities/logits disagree by {diff:.2e}")
    cam_scale = max(float(np.abs(ref[2]).max()), 1e-6)
    cam_rel = float(np.abs(ref[2] - got[2]).max()) / cam_scale
    if cam_rel > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch CAMs disagree by {cam_rel:.2e} (relative)")
    return diff
