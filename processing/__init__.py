"""The Preprocess step: curated offers and outcomes -> time-split train/validation/test tables."""
