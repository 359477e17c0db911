"""Entry point the Pulumi CLI runs (`python -m pulumi.policy <engine> policy/` runs this file): makes the
project importable, then builds and serves the pack."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy.pack import build

build()
