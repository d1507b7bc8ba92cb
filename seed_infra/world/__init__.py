"""The flight-search world: a simulator of search traffic that knows the truth.

Public API: `generate_world` (writes raw/, outcomes/, truth/ under a folder) and
`iter_search_events` (a lazy stream of SearchEvent dicts, e.g. for the Kinesis producer).
"""

from seed_infra.world.generator import World, validate_options
from seed_infra.world.params import WorldParams
from seed_infra.world.writer import WorldSummary, flight_outcomes, generate_world, iter_search_events

__all__ = ["World", "WorldParams", "WorldSummary", "flight_outcomes", "generate_world", "iter_search_events", "validate_options"]
