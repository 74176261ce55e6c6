"""Command-line interface: one module per subcommand, thin over the library API."""
