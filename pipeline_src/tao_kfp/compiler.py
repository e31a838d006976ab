"""Placeholder: being written."""


def add_arguments(parser):
    """Registers this subcommand's flags."""


def run(args):
    """Runs the subcommand."""
    raise SystemExit("tao-kfp: not implemented yet")
