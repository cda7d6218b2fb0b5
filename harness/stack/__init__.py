"""The stack: the real services a run needs, started, health-checked and always torn down."""

from harness.stack.local import ENV_URLS, AttachedStack, LocalStack, Services, StackConfig, attach_from_env
from harness.stack.process import ManagedProcess, wait_until
from harness.stack.signals import Terminated, terminate_as_exception

__all__ = [
    "ENV_URLS",
    "AttachedStack",
    "LocalStack",
    "ManagedProcess",
    "Services",
    "StackConfig",
    "Terminated",
    "attach_from_env",
    "terminate_as_exception",
    "wait_until",
]
