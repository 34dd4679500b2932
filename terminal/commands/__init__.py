"""The CLI's subcommands, one module each; ``terminal.cli`` assembles them."""
