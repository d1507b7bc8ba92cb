"""The SageMaker pipeline definition, SDK adapter, local executor, registry and the CLI."""
