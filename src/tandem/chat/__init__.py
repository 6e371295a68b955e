"""tandem.chat."""
