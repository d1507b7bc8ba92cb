"""The Glue ETL: raw search events -> curated offers (plain PySpark functions + the Glue entry)."""
