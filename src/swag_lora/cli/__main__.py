"""``python -m swag_lora.cli`` (also under ``torchrun`` and ``accelerate launch -m``)."""

import sys

from .commands import main

sys.exit(main())
