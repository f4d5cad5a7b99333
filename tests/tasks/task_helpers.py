"""Constants the task tests share (conftest holds the fixtures)."""

from __future__ import annotations

MODEL = "fraud-detector"
REGISTRANT = "registrant"  # the actor of the tests' settings: who registered the version
