"""The one exception a stage raises for bad input; its message is shown to the user as is."""


class PipelineError(Exception):
    """Bad input or environment: the message names the problem and what to do."""
