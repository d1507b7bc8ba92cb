"""The shared core: data contract, pipeline contract, lake catalog, model artifact format, AWS clients, job shell."""
