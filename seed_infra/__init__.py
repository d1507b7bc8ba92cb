"""The Kinesis/Glue side: world generator, Kinesis producer, Glue ETL, Lambda trigger, stacks."""
