"""The MLflow baseline of bench_serving.py: an MLflow pyfunc around ``model_io``'s DataFrame path.

``mlflow models serve`` of this gives the same predictions as our server, the way an MLflow user
would serve the model (pandas in, pandas out), so the ratio measures the serving path, not the model.
"""

from __future__ import annotations

import mlflow.pyfunc


class AirfareModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from core import model_io

        self.model = model_io.load(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        m = self.model
        if m.kind == "price":
            return m.predict_price(model_input)
        if m.kind == "demand":
            return m.predict_demand_proba(model_input)
        return m.anomaly_score(model_input)
