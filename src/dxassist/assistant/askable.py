"""Which vocabulary terms the assistant may ask as a next question.

Some benchmark "symptom" vocabularies (MZ-10, MZ-4-1733, MZ-4) hold what the doctors wrote
in the dialogue, which includes diagnoses (支气管炎 bronchitis, 感冒 a cold, 上呼吸道感染)
and tests (血常规 blood count, 胸片 chest film, CRP). They stay usable as inputs (a
clinician may enter a known diagnosis or result), but "Does the patient have bronchitis?"
is not a question to ask, so they are never proposed as next questions.

A term is left out of the questions when (rules checked in this order):

1. it equals one of the dataset's own disease labels, or contains a Chinese one (e.g.
   上呼吸道感染 and 急性上呼吸道感染 in MZ-10, whose labels include 上呼吸道感染);
2. it contains a test word of :data:`TEST_WORDS` (常规, 检查, 化验, 胸片, CT, 细胞 ...);
3. it ends with a diagnosis suffix of :data:`DIAGNOSIS_SUFFIXES` (炎 -itis, 感染
   infection, 感冒 cold, 病 disease, 症/综合征 syndrome ...);
4. it contains a diagnosis name of :data:`DIAGNOSIS_WORDS` whose form rule 3 misses
   (百日咳 pertussis, 水痘 chickenpox, 贫血 anaemia ...).

The lists are short and written for these Chinese vocabularies; English vocabularies
(SD-90, DDXPlus) only meet rule 1. What the rules remove from each shipped vocabulary is
listed by ``dxassist assist symptoms --dataset D`` (column ``asked``) and tested in
tests/assistant/test_askable.py.
"""

from __future__ import annotations

from collections.abc import Iterable

#: tests, examinations, lab values and departments
TEST_WORDS = (
    "常规", "检查", "检测", "测定", "化验", "验血", "检验", "听诊", "查体", "体检", "超声",
    "B超", "彩超", "CT", "X光", "拍片", "胸片", "平片", "培养", "试验", "实验", "心电图",
    "脑电图", "磁共振", "穿刺", "复查", "急诊", "分析", "细胞", "血小板", "血红蛋白", "CRP",
    "C反应蛋白", "WBC", "降钙素原", "微量元素", "病原", "拭子", "肠镜", "血涂片", "脑脊液",
    "肝功能", "肺功能", "心肌酶", "抗体", "骨密度", "免疫功能", "电解质", "胆红素", "耳鼻喉",
    "肺纹理", "阴影", "葡萄球菌", "肠道病毒",
)  # fmt: skip
#: whole terms that are a test, lab value or organ, too short for the contains-rule
TEST_TERMS = frozenset({"钙", "锌", "铁", "肾脏"})
#: endings of a diagnosis name
DIAGNOSIS_SUFFIXES = (
    "炎", "感染", "感冒", "病", "症", "综合征", "综合症", "哮喘", "结核", "紊乱", "不耐受",
    "性黄疸", "性黄胆",
)  # fmt: skip
#: diagnosis names that the suffixes miss
DIAGNOSIS_WORDS = (
    "百日咳", "水痘", "麻疹", "风疹", "猩红热", "幼儿急疹", "痢疾", "禽流感", "癫痫", "贫血",
    "肠套叠", "肠梗阻", "巨结肠", "高血压", "缺钙", "缺锌", "营养不良", "鹅口疮", "脑出血",
    "颅内出血", "衰竭", "积液", "缺损", "闭锁", "溃疡病", "胃溃疡", "胃食管反流", "痔疮", "肛裂",
    "血管瘤", "脓肿", "肺不张", "胎盘早剥", "胎膜早破", "宫颈糜烂", "肠粘膜受损", "异物",
    "狭窄", "梗阻", "淤积", "堵塞", "溶血", "高乳酸", "低血糖", "头颅外伤", "血肿", "青铜症",
    "肺炎", "功能减退", "功能亢进", "软化", "肥大", "隐血", "脂肪球",
)  # fmt: skip
#: diagnosis-looking terms that are complaints a patient reports (kept as questions)
KEEP = frozenset({"荨麻疹", "口腔溃疡", "溃疡"})


def _cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def why_not_asked(term: str, diseases: Iterable[str]) -> str | None:
    """The rule that keeps ``term`` out of the next questions, or None if it may be asked."""
    if term in KEEP:
        return None
    for d in diseases:
        # "contains" only for Chinese labels: an English label inside a longer English
        # complaint ("Anxiety" in "Anxiety and nervousness") is not a diagnosis
        if d and (term == d or (_cjk(d) and d in term)):
            return f"a diagnosis: the disease label {d!r}"
    if term in TEST_TERMS or any(w in term for w in TEST_WORDS):
        return "a test or lab value"
    if term.endswith(DIAGNOSIS_SUFFIXES):
        return "a diagnosis (name ending)"
    if any(w in term for w in DIAGNOSIS_WORDS):
        return "a diagnosis"
    return None


def never_asked(symptoms: list[str], diseases: list[str]) -> dict[str, str]:
    """{term: reason} for every vocabulary term that is not asked as a next question."""
    out = {}
    for s in symptoms:
        reason = why_not_asked(s, diseases)
        if reason is not None:
            out[s] = reason
    return out
