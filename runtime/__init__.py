"""Process-wide plumbing shared by the API, the workers and the CLI: settings, logs, Temporal."""
