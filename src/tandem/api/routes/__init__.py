"""One router per resource; each validates, authorizes and calls a repository or service."""
