"""The one exception type of the pretraining data pipeline."""


class DataError(ValueError):
    """Bad pretraining input: the message names the file (or dataset), the line (or row) and the fix.

    A subclass of ValueError so callers that already catch ValueError keep working.
    """
