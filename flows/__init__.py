"""Prefect flows (retrain, promote, rollback, drain) and the project's main job.

Importing this package changes nothing: entry points call
``registry.config.quiet_third_party_telemetry()`` before Prefect is imported.
"""
