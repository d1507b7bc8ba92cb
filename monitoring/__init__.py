"""Model Monitor for the airfare models: baselines, data quality and model quality of captured traffic.

The files written here (``statistics.json``, ``constraints.json``, ``constraint_violations.json``
and the model-quality variants) follow AWS SageMaker Model Monitor's documented formats, so the
same baselines serve the local analyzer and Model Monitor's own analyzer image on AWS.
"""
