"""``swag-lora``: train | evaluate | predict | generate | report | demo.

Each command lives in its own module (:mod:`.train`, :mod:`.evaluate`, ...) with a
``run(argv) -> int``; they are imported by name when called, so ``swag-lora --help`` starts
at once. An error a user can fix (any :class:`~swag_lora.errors.SwagLoraError`, a missing
file, no permission, a full disk) ends with one line on stderr and exit status 2; anything
else is a bug and shows its traceback (exit status 1). ``SWAG_LORA_DEBUG=1`` shows the
traceback of user errors too.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import sys
import warnings

from ..errors import SwagLoraError
from ..version import __version__

__all__ = ["COMMANDS", "EXIT_USAGE", "is_user_error", "main"]

EXIT_USAGE = 2

# command -> (module, summary)
COMMANDS = {
    "train": ("swag_lora.cli.train", "fine-tune with LoRA and collect a SWAG posterior (a run directory)"),
    "evaluate": ("swag_lora.cli.evaluate", "evaluate methods of runs on in-distribution and OOD tasks"),
    "predict": ("swag_lora.cli.predict", "answers with their uncertainty for new inputs"),
    "generate": ("swag_lora.cli.generate", "free-form answers with their uncertainty (ensemble or sampled decoding)"),
    "report": ("swag_lora.cli.report", "markdown report and plots from saved evaluations"),
    "demo": ("swag_lora.cli.demo", "train, evaluate and report on the packaged SmolLM2 and ARC-Easy"),
}

# The operating-system errors a user causes and can fix: a wrong path, no permission, no space.
_USER_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is one a user can fix (printed as one line), rather than a bug."""
    if isinstance(err, (SwagLoraError, *_USER_OS_ERRORS)):
        return True
    return isinstance(err, OSError) and err.errno in _USER_ERRNOS


def _quiet_library_warnings() -> None:
    """Silence deprecation chatter from libraries that users cannot act on."""
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*is deprecated", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pin_memory.*no accelerator is found", category=UserWarning)
    # bitsandbytes (when installed) logs at import that an optional hub-downloaded CPU kernel is missing
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def _usage() -> str:
    lines = [f"usage: swag-lora {{{','.join(COMMANDS)}}} [options]   (swag-lora COMMAND --help for each)",
             f"swag-lora {__version__}: Bayesian LoRA fine-tuning of causal LMs with SWAG.", "", "commands:"]
    lines += [f"  {name:<9} {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    _quiet_library_warnings()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else EXIT_USAGE
    if argv[0] == "--version":
        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"swag-lora: error: unknown command {command!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USAGE
    run = importlib.import_module(COMMANDS[command][0]).run
    if os.environ.get("SWAG_LORA_DEBUG"):
        return run(rest)
    try:
        return run(rest)
    except KeyboardInterrupt:
        print(f"swag-lora {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if not is_user_error(err):
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"swag-lora {command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
