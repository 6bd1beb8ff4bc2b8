"""The three-marker decision rule of Yan et al. 2020 (the baseline).

Yan L. et al., "An interpretable mortality prediction model for COVID-19 patients",
Nature Machine Intelligence 2, 283-288 (2020). The published single tree
(``result/single-tree.dot`` in HAIRLAB/Pre_Surv_COVID_19) is:

    LDH >= 365 U/L                                  -> death
    LDH <  365 and hs-CRP <  41.2 mg/L              -> survival
    LDH <  365 and hs-CRP >= 41.2 and lymph% < 14.7 -> death
    LDH <  365 and hs-CRP >= 41.2 and lymph% >= 14.7 -> survival

A missing value follows the tree's "yes, missing" branch, as in the published XGBoost
tree: missing LDH counts as < 365, missing hs-CRP as < 41.2, missing lymphocyte % as
< 14.7.
"""

from __future__ import annotations

from collections.abc import Mapping

LDH_CUT = 365.0
HSCRP_CUT = 41.2
LYMPH_CUT = 14.7


def yan_rule(values: Mapping[str, float | None]) -> int:
    """1 (predicted death) or 0 (predicted survival) for labs keyed LDH, hsCRP,
    lymphocyte_pct (None = missing)."""
    ldh, crp, lym = values.get("LDH"), values.get("hsCRP"), values.get("lymphocyte_pct")
    if ldh is not None and ldh >= LDH_CUT:
        return 1
    if crp is None or crp < HSCRP_CUT:
        return 0
    return 1 if lym is None or lym < LYMPH_CUT else 0
