"""tandem.web."""
