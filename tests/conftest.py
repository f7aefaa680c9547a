from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The reference service is an example, not part of the package.
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytest_plugins = ["pytester"]
