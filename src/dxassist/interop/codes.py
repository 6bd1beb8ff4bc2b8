"""Coded concepts for the chest X-ray findings and the other items of dxassist's DICOM results.

SNOMED CT (scheme ``SCT``, international edition) codes, checked against public
terminology sources (SNOMED browser / FHIR value sets; pydicom's tables have only "Normal"):

======================  ==========  =================================================
finding                 SCT code    SNOMED CT preferred term
======================  ==========  =================================================
normal                  17621005    Normal (qualifier value)
bacterial_pneumonia     53084003    Bacterial pneumonia (disorder)
viral_pneumonia         75570004    Viral pneumonia (disorder)
covid19                 840539006   Disease caused by severe acute respiratory
                                    syndrome coronavirus 2 (disorder), "COVID-19"
(any pneumonia)         233604007   Pneumonia (disorder)
======================  ==========  =================================================

Choices, stated once here and in the integration docs:

- The Code Meaning written is the model card's name (``taxonomy.DISPLAY_NAMES``), because
  that is what each probability is about; the SNOMED term is kept in ``snomed_term``.
  Receivers compare coding scheme and code value, not the meaning.
- ``normal`` is the model's "no pneumonia" class. SNOMED has no pre-coordinated
  "no pneumonia" in the international edition; DICOM itself uses 17621005 "Normal" as a
  finding value (CID 222, CID 7151). It is coded so, with the meaning "No pneumonia".
- ``viral_pneumonia`` excludes COVID-19 in this model, while SNOMED 75570004 includes it;
  the meaning "Viral pneumonia (non-COVID-19)" says so.
- ``covid19`` uses 840539006 (international). The more precise "Pneumonia caused by
  SARS-CoV-2" (882784691000119100) exists only in the US extension, so it is not used.
- Triage tiers, "most probable finding", heatmap and warning items are dxassist's own
  concepts: they use the local scheme ``99DXA`` (declared in the Coding Scheme
  Identification Sequence of every SR), rather than borrowing a standard code whose
  meaning differs (the tiers are thresholds on the model's score, not clinical urgency).
"""

from __future__ import annotations

from dataclasses import dataclass

from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from dxassist.cxr.taxonomy import DISPLAY_NAMES, FINDINGS


@dataclass(frozen=True)
class FindingCode:
    """One finding of the model and its SNOMED CT concept."""

    key: str
    code: str
    snomed_term: str
    display: str

    @property
    def concept(self) -> CodedConcept:
        """The concept as written in DICOM: SCT code, model-card meaning."""
        return CodedConcept(value=self.code, scheme_designator="SCT", meaning=self.display)


FINDING_CODES: dict[str, FindingCode] = {
    "normal": FindingCode("normal", "17621005", "Normal", DISPLAY_NAMES["normal"]),
    "bacterial_pneumonia": FindingCode(
        "bacterial_pneumonia",
        "53084003",
        "Bacterial pneumonia",
        DISPLAY_NAMES["bacterial_pneumonia"],
    ),
    "viral_pneumonia": FindingCode(
        "viral_pneumonia", "75570004", "Viral pneumonia", DISPLAY_NAMES["viral_pneumonia"]
    ),
    "covid19": FindingCode(
        "covid19", "840539006", "Disease caused by SARS-CoV-2", DISPLAY_NAMES["covid19"]
    ),
}
if tuple(FINDING_CODES) != FINDINGS:  # pragma: no cover - a taxonomy change must add codes
    raise RuntimeError(f"interop.codes covers {tuple(FINDING_CODES)}, the model reports {FINDINGS}")

#: Any pneumonia (bacterial + viral + COVID-19 = 1 - p(normal), the triage score).
ANY_PNEUMONIA = FindingCode("pneumonia", "233604007", "Pneumonia", "Pneumonia (any type)")

#: Key of a finding from its SCT code value (for reading SRs back).
FINDING_BY_CODE: dict[str, str] = {f.code: f.key for f in FINDING_CODES.values()}

# -- standard DICOM concepts (from pydicom's tables) ------------------------------------

#: Concept name of each probability (DCM 122157 "Probability").
PROBABILITY = CodedConcept.from_code(codes.DCM.Probability)
#: UCUM "1" (no units): probabilities are written on 0..1, exactly as the model returns them.
UNIT_ONE = CodedConcept.from_code(codes.UCUM.NoUnits)
#: SCT 399208008 "Plain chest X-ray": the procedure the report is about.
PLAIN_CHEST_XRAY = CodedConcept(
    value="399208008", scheme_designator="SCT", meaning="Plain chest X-ray"
)
#: The document-level "Qualitative Evaluations" container of TID 1500.
QUALITATIVE_EVALUATIONS = CodedConcept(
    value="C0034375", scheme_designator="UMLS", meaning="Qualitative Evaluations"
)

# -- dxassist's local coding scheme ----------------------------------------------------

LOCAL_SCHEME = "99DXA"


def local(value: str, meaning: str) -> CodedConcept:
    return CodedConcept(value=value, scheme_designator=LOCAL_SCHEME, meaning=meaning)


MOST_PROBABLE_FINDING = local("top-finding", "Most probable finding")
HEATMAP_FINDING = local("heatmap-finding", "Finding shown by the heatmap")
TRIAGE_PRIORITY = local("triage-priority", "Worklist triage priority")
READ_WARNING = local("read-warning", "Reading warning")
INTENDED_USE = local("intended-use", "Intended use")

PRIORITY_CODES: dict[str, CodedConcept] = {
    "urgent": local("urgent", "Urgent"),
    "priority": local("priority", "Priority"),
    "routine": local("routine", "Routine"),
}
PRIORITY_BY_CODE: dict[str, str] = {c.value: k for k, c in PRIORITY_CODES.items()}


def local_scheme_identification() -> Dataset:
    """The Coding Scheme Identification Sequence item declaring ``99DXA``."""
    item = Dataset()
    item.CodingSchemeDesignator = LOCAL_SCHEME
    item.CodingSchemeName = "dxassist local codes"
    item.CodingSchemeResponsibleOrganization = "dxassist project"
    return item
