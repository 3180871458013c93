"""The one error type the shards package raises for bad input (a user's mistake, not a bug).

The CLI turns it into a one-line message and a non-zero exit; anything else is a bug and
keeps its traceback.
"""


class ShardError(Exception):
    """Bad input to a shards operation: a missing path, an unreadable video, a corrupt shard."""
