"""convex-mastra: asyncio-native storage for Mastra agent memory and state on Convex."""

import logging

from ._cache import ConvexServerCache
from ._dispatch import HandlerInfo
from ._domains._watch import ListWatch, MessageWatch, RunWatch
from ._domains.background_tasks import BackgroundTask
from ._domains.channels import ChannelConfig, ChannelInstallation
from ._domains.messages import DateRange, Include
from ._domains.observational import BufferedActivation, ObservationalMemoryRecord
from ._domains.schedules import Schedule, ScheduleTrigger
from ._domains.threads import ThreadClone, ThreadCopy
from ._domains.vectors import IndexStats, QueryResult
from ._errors import (
    AuthenticationError,
    BatchLimitError,
    ConfigurationError,
    ConvexMastraError,
    DeploymentUnavailable,
    FunctionError,
    LocalDeploymentError,
    NotFoundError,
    PartialWriteError,
    RecordTooLargeError,
    RequestTimeoutError,
    StorageOperationError,
    ValidationError,
)
from ._models import (
    Message,
    MessageContent,
    Page,
    Resource,
    Score,
    Thread,
    WorkflowRun,
    WorkflowSnapshot,
)
from ._store import ConvexStore
from ._transport import AsyncTransport, ConvexInt64, HttpTransport, RetryPolicy
from ._vector import ConvexVector
from ._version import __version__
from .local import LocalDeployment

__all__ = [
    "AsyncTransport",
    "AuthenticationError",
    "BackgroundTask",
    "BatchLimitError",
    "BufferedActivation",
    "ChannelConfig",
    "ChannelInstallation",
    "ConfigurationError",
    "ConvexInt64",
    "ConvexMastraError",
    "ConvexServerCache",
    "ConvexStore",
    "ConvexVector",
    "DateRange",
    "DeploymentUnavailable",
    "FunctionError",
    "HandlerInfo",
    "HttpTransport",
    "Include",
    "IndexStats",
    "ListWatch",
    "LocalDeployment",
    "LocalDeploymentError",
    "Message",
    "MessageContent",
    "MessageWatch",
    "NotFoundError",
    "ObservationalMemoryRecord",
    "Page",
    "PartialWriteError",
    "QueryResult",
    "RecordTooLargeError",
    "RequestTimeoutError",
    "Resource",
    "RetryPolicy",
    "RunWatch",
    "Schedule",
    "ScheduleTrigger",
    "Score",
    "StorageOperationError",
    "Thread",
    "ThreadClone",
    "ThreadCopy",
    "ValidationError",
    "WorkflowRun",
    "WorkflowSnapshot",
    "__version__",
]

# Quiet by default: the application decides where log records go.
logging.getLogger("convex_mastra").addHandler(logging.NullHandler())
