"""Metrics, gates, the evaluation.json property file, and plots."""
