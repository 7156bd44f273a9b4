"""Worker processes: one process polls the orders, payments, email and render task queues."""
