"""Prefect tasks: thin wrappers over functions of the ``registry`` package."""
