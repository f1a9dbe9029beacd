"""Command-line entry points: ``parsing`` (LightningCLI and the other subcommands) and ``parsing-predict``."""
