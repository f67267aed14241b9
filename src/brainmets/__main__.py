"""``python -m brainmets``: the same as the ``brainmets`` command."""

import sys

from .cli import main

sys.exit(main())
