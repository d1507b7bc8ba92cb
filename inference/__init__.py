"""Model loading, request validation, prediction and the `serve` HTTP app."""
