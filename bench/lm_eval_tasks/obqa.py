"""OBQA's AI2 release records as the hub dataset's fields, for openbookqa_local.yaml."""

__all__ = ["process_docs"]


def _hub_fields(doc: dict) -> dict:
    question = doc["question"]
    return {
        "id": doc["id"],
        "question_stem": question["stem"],
        "choices": {"text": [c["text"] for c in question["choices"]],
                    "label": [c["label"] for c in question["choices"]]},
        "answerKey": doc["answerKey"],
    }


def process_docs(dataset):
    """``{"id", "question": {"stem", "choices": [{"text", "label"}]}, "answerKey"}`` records as
    allenai/openbookqa's ``{"id", "question_stem", "choices": {"text", "label"}, "answerKey"}``."""
    return dataset.map(_hub_fields, remove_columns=dataset.column_names)
