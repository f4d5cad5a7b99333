"""MLflow Model Registry compatibility: the REST API an unmodified MLflow client speaks."""
