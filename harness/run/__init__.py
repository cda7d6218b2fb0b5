"""The run: a scenario becomes a stored history and verdicts (see engine.py for the phases)."""
