__version__ = "0.0.1"

from .policy import Policy, set_limit
from .task import task, Task, Job, Cancelled
from .chain import Chain
from .tracking import Jobs, JobStore, StoreUnavailable
from . import shared  # periodic tasks, purging and the worker process add to `Jobs`
from .ui import JobStatus, JobStream, JobCounts, Dashboard
