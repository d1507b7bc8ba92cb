"""Great Expectations suites and the DataQuality pipeline step."""
