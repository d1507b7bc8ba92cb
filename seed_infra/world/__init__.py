"""The flight-search world: a simulator of search traffic that knows the truth."""
