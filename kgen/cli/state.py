"""Process-wide CLI settings made by the root options (kgen --debug), read by the commands."""

from __future__ import annotations

import os

state = {"debug": bool(os.environ.get("KGEN_DEBUG"))}
