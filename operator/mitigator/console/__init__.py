"""The incident commands of the `mitigator` command line (also `kubectl mitigator …`):
list, describe, approve, resolve, postmortem and drill."""

from mitigator.console.commands import add_commands

__all__ = ["add_commands"]
