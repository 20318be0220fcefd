"""Task layer: multiple-choice datasets as :class:`Row` objects, and prompt formatting."""

from .base import ClozePrompt, LetterPrompt, PromptParts, Row
from .prompts import encode_prompt, format_cloze, format_letter

__all__ = [
    "ClozePrompt",
    "LetterPrompt",
    "PromptParts",
    "Row",
    "encode_prompt",
    "format_cloze",
    "format_letter",
]
