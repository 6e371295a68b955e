"""tandem.registry."""
