"""The reference asynchronous ledger synchronizer: the system under test that every scenario drives.

Ingest API (ASGI) -> Redis Streams partitions -> consumer processes -> PostgreSQL
journal, balance projection in the same transaction. It never imports `harness`:
the harness reaches it only over the network, as it would reach a user's service.
Start it with `python -m reference_system serve ...`; see docs/reference-system.md.
"""

__all__ = ["Settings", "Variant"]

from reference_system.settings import Settings, Variant
