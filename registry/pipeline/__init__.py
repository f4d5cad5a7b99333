"""The release pipeline's ML logic: data, validation, training, evaluation, canary, health.

Plain Python without Prefect; ``tasks/`` wraps these functions. Submodules import
pandas, scikit-learn or Great Expectations, so import them directly (``from
registry.pipeline.data import load_dataset``): this package itself imports nothing
heavy, which keeps ``python -m registry.pipeline.health_worker`` starting fast.
"""
