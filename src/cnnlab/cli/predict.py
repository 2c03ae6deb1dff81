"""(placeholder: these subcommands are being written)"""


def register(subparsers) -> None:
    return None
