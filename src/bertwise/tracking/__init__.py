"""Experiment tracking: a finished comparison's results and a trained model folder, logged to MLflow
(:class:`~bertwise.tracking.mlflow_tracking.MlflowTracking`). Tracking consumes what was saved; it decides no number."""
