"""The comparison pipeline: its stages, its results (Comparison) and saving the recommended model."""
