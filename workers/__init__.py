"""Worker processes: one process polls the orders, payments and email task queues."""
