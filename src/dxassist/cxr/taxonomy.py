"""The findings the chest X-ray model reports, in the order of its outputs."""

from __future__ import annotations

#: Output order of the model's softmax. Never reorder: the ONNX files depend on it.
FINDINGS: tuple[str, ...] = ("normal", "bacterial_pneumonia", "viral_pneumonia", "covid19")

#: Human-readable names, as used in the model card and reports.
DISPLAY_NAMES: dict[str, str] = {
    "normal": "No pneumonia",
    "bacterial_pneumonia": "Bacterial pneumonia",
    "viral_pneumonia": "Viral pneumonia (non-COVID-19)",
    "covid19": "COVID-19 pneumonia",
}

#: Manifest label for pneumonia of unrecorded type (NIH ChestX-ray14). Trained against the
#: summed probability of the three pneumonia findings.
PNEUMONIA_UNTYPED = "pneumonia"

#: Manifest labels the model does not learn (ARDS, Pneumocystis...): left out of training.
EXCLUDED_LABELS = frozenset({"other"})

#: Labels a radiologist can give a study on review: the four findings, pneumonia whose
#: type the film does not show, and another abnormality the model does not report. They
#: are the labels a training manifest accepts, so reviewed studies can be exported as one.
REVIEW_LABELS: tuple[str, ...] = (*FINDINGS, PNEUMONIA_UNTYPED, "other")

REVIEW_LABEL_NAMES: dict[str, str] = {
    **DISPLAY_NAMES,
    PNEUMONIA_UNTYPED: "Pneumonia, type not determined",
    "other": "Other abnormality (not pneumonia)",
}
