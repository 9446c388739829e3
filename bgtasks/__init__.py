__version__ = "0.0.1"

from .task import task, Task, Job, Cancelled
from .policy import Policy, set_limit
from .chain import Chain
from .store import JobStore
from .tracking import Jobs, StoreUnavailable
from . import shared  # periodic tasks, purging and the worker process add to `Jobs`
from .ui import JobStatus, JobStream, JobCounts, Dashboard
