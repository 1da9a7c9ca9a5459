"""Run a fake memories.ai server until interrupted: ``python -m memories_async.testing --help``."""

from __future__ import annotations

import sys

from memories_async.testing._command import main

if __name__ == "__main__":
    sys.exit(main())
