"""Model Monitor's record preprocessor for the airfare endpoints (``RecordPreprocessorSourceUri``).

Model Monitor's analyzer calls ``preprocess_handler(inference_record)`` for each captured line
(Developer Guide, "Preprocessing and Postprocessing"); returning a list of flat dicts makes one
analyzed record per instance. Our endpoints accept several request shapes (a bare object, an
``{"instances": [...]}`` body, a list, JSON lines), which the analyzer cannot flatten by itself.
Self-contained on purpose: the analyzer image loads this one file, without our packages.
"""

import base64
import json


def _body(data, encoding):
    if str(encoding).upper() == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    return data


def preprocess_handler(inference_record, logger=None):
    """One flat dict per request instance, named by feature (non-dict records are skipped)."""
    inp = inference_record.endpoint_input
    text = _body(inp.data, inp.encoding).strip()
    if not text:
        return []
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(body, dict):
        body = body.get("instances", [body])
    records = [r for r in body if isinstance(r, dict)] if isinstance(body, list) else []
    if logger is not None and not records:
        logger.warning("a captured request held no JSON object records")
    return records
