__version__ = "0.0.1"

from .task import task, Task, Job, Cancelled
from .policy import Policy, set_limit
from .chain import Chain
from .store import JobStore
from .tracking import Jobs, StoreUnavailable
from . import shared  # periodic tasks, purging and the worker process add to `Jobs`

# The job console (`bgtasks.ui`) brings FastHTML's components, several MiB that a worker process, or an app made
# with `prefix=None`, does without: it is imported by the first `Jobs` that mounts it, or the first use of its names.
_UI = ('JobStatus', 'JobStream', 'JobCounts', 'Dashboard')

def _mount_console(self):
    "Import the console, which puts its own `Jobs.mount` in place of this one, and mount it"
    from . import ui  # noqa: F401
    if Jobs.mount is _mount_console: raise RuntimeError('bgtasks.ui did not provide Jobs.mount')
    Jobs.mount(self)

Jobs.mount = _mount_console

def __getattr__(name):
    if name in _UI:
        from . import ui
        return getattr(ui, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
