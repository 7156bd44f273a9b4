"""The backoffice surface: HTTP API, CLI, and the Temporal client facade they share."""
