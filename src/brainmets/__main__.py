"""``python -m brainmets``: the same as the ``brainmets`` command."""

import sys

from brainmets.cli import main

sys.exit(main())
