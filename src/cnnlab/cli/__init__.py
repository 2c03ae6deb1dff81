"""Command-line interface: each module parses its subcommands into a config and calls a workflow."""
