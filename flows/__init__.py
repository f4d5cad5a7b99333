"""Prefect flows and the project's main job."""
