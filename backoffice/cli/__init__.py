"""The `ticketops` command line."""
