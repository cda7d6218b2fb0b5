"""ledgerchaos: chaos testing and load simulation for asynchronous ledgers."""

__version__ = "0.1.0"
__all__ = ["__version__"]
