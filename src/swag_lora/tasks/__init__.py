"""Task layer: multiple-choice datasets as :class:`Row` objects, and prompt formatting.

``load_task(name, split, data_dir=None, ...)`` reads a split of a registered task from a local
folder in the task's release format or from the Hugging Face hub (or of a custom task: a task
file or a :class:`CustomTask`, your own data with a column mapping); ``list_tasks()`` names the
tasks; ``format_cloze`` / ``format_letter`` turn a row into a prompt for either scoring mode.
Text tasks (a prompt and reference answers, for generation): ``load_text_task`` gives a
multiple-choice task's generative form or your own ``{"prompt", "answers"}`` files as
:class:`TextRow` objects.
"""

from .base import ClozePrompt, LetterPrompt, PromptParts, Row, TaskSplit
from .columns import ColumnMapping
from .custom import CustomTask
from .errors import DataFormatError, DataNotFoundError, TaskDefinitionError, UnknownTaskError
from .hub import ENV_VAR
from .loading import load_task
from .locate import DataDirs
from .prompts import (
    CLOZE_PROMPTS,
    ChatFormat,
    ClozeTemplate,
    EncodedCloze,
    KeepEndParts,
    LetterTemplate,
    cloze_template,
    encode_cloze,
    encode_prompt,
    format_cloze,
    format_letter,
)
from .registry import SPLITS, get_task, list_tasks
from .text import PROMPT_FORMS, TextRow, TextSplit, text_prompt
from .text_files import load_text_task

__all__ = [
    "CLOZE_PROMPTS",
    "ENV_VAR",
    "PROMPT_FORMS",
    "SPLITS",
    "ChatFormat",
    "ClozePrompt",
    "ClozeTemplate",
    "ColumnMapping",
    "CustomTask",
    "DataDirs",
    "DataFormatError",
    "DataNotFoundError",
    "EncodedCloze",
    "KeepEndParts",
    "LetterPrompt",
    "LetterTemplate",
    "PromptParts",
    "Row",
    "TaskDefinitionError",
    "TaskSplit",
    "TextRow",
    "TextSplit",
    "UnknownTaskError",
    "cloze_template",
    "encode_cloze",
    "encode_prompt",
    "format_cloze",
    "format_letter",
    "get_task",
    "list_tasks",
    "load_task",
    "load_text_task",
    "text_prompt",
]
