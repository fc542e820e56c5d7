"""``python -m bi_engine`` is the ``bi-engine`` command."""

import sys

from bi_engine.cli import main

sys.exit(main())
