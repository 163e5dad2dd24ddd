"""Every test finds this virtualenv's ansible-playbook, ansible-inventory and slipway first on PATH, as under
`make test`, also when pytest is started as .venv/bin/pytest without activating the virtualenv."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = os.pathsep.join([_BIN, os.environ.get("PATH", "")])
