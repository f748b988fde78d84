"""The one exception type whose message is meant for the user (CLI, add-on report, server error event)."""


class UserError(Exception):
    """Bad input or an unusable file: the message says what is wrong and what to do; nothing was written."""
