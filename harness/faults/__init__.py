"""Faults: timed schedules (pure values) and their application to a live stack.

`harness.faults.toxiproxy_adapter` is the only module of the harness that imports the
Toxiproxy client; importing this package does not import it, so the capacity
model and the explorer can use the schedule types without it.
"""

from harness.faults.schedule import (
    TOXIC_ATTRIBUTES,
    Direction,
    Fault,
    FaultSchedule,
    Link,
    LinkDown,
    ProcessAction,
    ProcessFault,
    ProcessTarget,
    ToxicFault,
    ToxicType,
)

__all__ = [
    "TOXIC_ATTRIBUTES",
    "Direction",
    "Fault",
    "FaultSchedule",
    "Link",
    "LinkDown",
    "ProcessAction",
    "ProcessFault",
    "ProcessTarget",
    "ToxicFault",
    "ToxicType",
]
