"""Tornado handlers, one module per resource. The route table is in :mod:`handlers.routes`."""
