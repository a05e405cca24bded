"""perfci: performance-regression checks for HTTP services."""

__version__ = "0.1.0"
