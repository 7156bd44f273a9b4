"""The CLI fixtures of the import tests serve the `demo seed` command too."""

from tests.importing.conftest import cli_store  # noqa: F401
