"""Network access on users' behalf: SSRF-safe fetching (safe_fetch) and readable text (readable)."""
