"""Subcommands of the `cnngrade` command line, one module each with a ``register(subparsers)`` function."""
