"""tandem: a chat assistant and the research loop that improves it from its users' signals."""

__version__ = "0.1.0"
