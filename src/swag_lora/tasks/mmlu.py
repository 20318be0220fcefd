"""MMLU's 57 subjects and the four standard categories (STEM, humanities, social sciences, other),
as grouped in the MMLU paper's release; and the task names that select subjects."""

from __future__ import annotations

__all__ = [
    "GROUPS",
    "HUMANITIES",
    "OTHER",
    "SOCIAL_SCIENCES",
    "STEM",
    "SUBJECTS",
    "parse_selection",
]


STEM = (
    "abstract_algebra",
    "astronomy",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "electrical_engineering",
    "elementary_mathematics",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_mathematics",
    "high_school_physics",
    "high_school_statistics",
    "machine_learning",
)
HUMANITIES = (
    "formal_logic",
    "high_school_european_history",
    "high_school_us_history",
    "high_school_world_history",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "moral_disputes",
    "moral_scenarios",
    "philosophy",
    "prehistory",
    "professional_law",
    "world_religions",
)
SOCIAL_SCIENCES = (
    "econometrics",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_microeconomics",
    "high_school_psychology",
    "human_sexuality",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
)
OTHER = (
    "anatomy",
    "business_ethics",
    "clinical_knowledge",
    "college_medicine",
    "global_facts",
    "human_aging",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "nutrition",
    "professional_accounting",
    "professional_medicine",
    "virology",
)

#: Category name (as used in task names ``mmlu-<category>``) -> its subjects.
GROUPS: dict[str, tuple[str, ...]] = {
    "stem": STEM,
    "humanities": HUMANITIES,
    "social-sciences": SOCIAL_SCIENCES,
    "other": OTHER,
}
SUBJECTS: tuple[str, ...] = tuple(sorted(STEM + HUMANITIES + SOCIAL_SCIENCES + OTHER))


def _normalise(part: str) -> str:
    return part.strip().lower().replace(" ", "_").replace("-", "_")


def parse_selection(selection: str) -> tuple[str, ...] | None:
    """Subjects named by the part of a task name after ``mmlu-`` (or ``mmlu:``).

    A selection is one or more items joined by ``+`` or ``,``; an item is a subject
    (``high_school_physics`` or ``high-school-physics``) or a category (``stem``,
    ``humanities``, ``social-sciences``, ``other``). Returns the subjects in the order named,
    each once, or ``None`` when an item is neither.
    """
    groups = {_normalise(name): members for name, members in GROUPS.items()}
    chosen: list[str] = []
    for item in selection.replace(",", "+").split("+"):
        key = _normalise(item)
        if key in groups:
            members = groups[key]
        elif key in SUBJECTS:
            members = (key,)
        else:
            return None
        chosen.extend(s for s in members if s not in chosen)
    return tuple(chosen) if chosen else None
