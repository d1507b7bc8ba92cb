"""What the serving container reads and writes: the one list model packages advertise.

Kept free of imports so that registry and pipeline-definition code can import it cheaply.
"""

JSON = "application/json"
JSONLINES = "application/jsonlines"
CSV = "text/csv"
# Request Content-Types the container parses (inference.codec) and response types it writes (Accept).
CONTENT_TYPES = (JSON, JSONLINES, CSV)
RESPONSE_TYPES = (JSON, JSONLINES, CSV)
