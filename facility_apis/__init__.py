"""Facility adapters: an abstract base class and one module per facility (LCO first)."""
