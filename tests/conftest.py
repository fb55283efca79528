"""Cross-package tests: their helper modules (``install_support``) import by name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
