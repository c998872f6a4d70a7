"""Using a trained model: streaming predictions over files, and embeddings."""
