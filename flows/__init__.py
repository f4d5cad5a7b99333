"""Prefect flows (retrain, promote, rollback, drain) and the project's main job.

Importing the package turns off the telemetry of Prefect and Great Expectations
(both read these before their first import; an explicit setting wins).
"""

import os

for _key, _value in (
    ("DO_NOT_TRACK", "1"),
    ("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
    ("GX_ANALYTICS_ENABLED", "false"),
):
    os.environ.setdefault(_key, _value)
