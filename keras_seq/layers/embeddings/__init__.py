"""Position encodings and embeddings."""
