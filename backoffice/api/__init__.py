"""FastAPI application of the backoffice."""
