"""The package's one version number: pyproject.toml reads it from here, results.json and model folders record it."""

__version__ = "0.2.0"
