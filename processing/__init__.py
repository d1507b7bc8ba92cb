"""Curated data contract and the Preprocess step."""
