"""bgtasks against its peers: durable no-op jobs/s, CPU per job and peak memory, side by side, on one machine.

Reports, in one run (results go to bench/peers_results.json, and a markdown table is printed):
every case enqueues `--jobs` no-op jobs, one after the other from one producer, and waits until all have succeeded,
as seen in the library's own durable store (a count polled every 10 ms). The cases:
- `bgtasks_thread`: bgtasks on SQLite, embedded: a Starlette app with `Jobs(app, db, workers=4, prefix=None)` inside its
  lifespan; a producer thread (`asyncio.to_thread`) calls `noop.bg(i)` for a `def` task; `jobs.counts()` is polled.
- `bgtasks_loop`: the same with an `async def` task, `.bg()` called on the app's event loop (`sleep(0)` every 100 jobs).
- `bgtasks_redis`: bgtasks on Redis + Dramatiq, `Jobs(app, redis=url, prefix=None)`; `bgtasks-worker app -p 2 -t 2`
  runs the jobs, the web process stores and sends them from a producer thread and polls `jobs.counts()`.
- `dramatiq_raw`: a plain `@dramatiq.actor` that `INCR`s a Redis key, N `.send()`, `dramatiq app -p 2 -t 2`.
- `huey_default`, `huey_normal`, `huey_nofsync`: `SqliteHuey` (WAL) with its default `fsync=None` (SQLite's default,
  synchronous=FULL), with synchronous=NORMAL (as bgtasks), and with `fsync=False` (synchronous=OFF); a consumer of 4
  worker threads in the same process (`huey.create_consumer(workers=4, worker_type='thread')`), results stored as Huey
  does by default; the rows of its result table are counted.
- `taskflow`: fastapi-taskflow, `TaskManager(snapshot_db=..., requeue_pending=True)` with a queue of concurrency 4 and 4
  sync threads, jobs added with `ManagedBackgroundTasks(tm).add_task` on the loop. It keeps queued tasks in memory (they
  reach SQLite only at a clean shutdown) and writes each finished task to SQLite: its successes in the file are counted.
- `dbos`: DBOS on SQLite (`system_database_url='sqlite:///...'`, DBOS's default rollback journal), N workflows of one
  no-op step enqueued on a queue with `worker_concurrency=4` and `polling_interval_sec=0.01` (the default, 1 s, would
  start at most 4 workflows a second); SUCCESS rows of `workflow_status` are counted.
Redis (for the Redis cases) is a fresh `redis-server` per case on a free loopback port in a temporary directory, with an
append-only file (fsync every second, Redis's default) and no snapshots.

How: each case runs in a fresh subprocess of this script (`--case`), which starts whatever the case needs (Redis, worker
processes) as its own children. Throughput is jobs / seconds from the first enqueue until the poll sees all done. CPU per
job counts the user+system time, between those two moments, of every process of the case (the case process, its
workers, Redis), read from /proc/PID/stat; the CPU of the whole case including start-up (from `os.wait4`) is in the
JSON. Peak RSS is each process's VmHWM from /proc/PID/status when the last job is done. Each figure is the median of
`--rounds` rounds; the cases alternate within a round so drift hits them all. A peer that is not installed gets a row
saying so; a case that fails or times out (`--timeout`, default 120 s) gets a row with its error, and its processes
are killed.

Rerun: pip install -e '.[bench]' && python bench/peers.py [--jobs 5000] [--rounds 3] [--only bgtasks_thread,huey_default]
"""
import argparse, asyncio, contextlib, importlib.util, json, os, platform, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
POLL = 0.01  # seconds between the checks for "all done", the same for every case
TICK = os.sysconf('SC_CLK_TCK')

# ---------------------------------------------------------------- measuring the processes of a case

def _stat(pid):
    "(ppid, cpu seconds) of `pid` from /proc, or `None` if it is gone"
    try: s = Path(f'/proc/{pid}/stat').read_text()
    except OSError: return None
    f = s[s.rindex(')')+2:].split()
    return int(f[1]), (int(f[11])+int(f[12]))/TICK

def tree(root=None) -> dict:
    "{pid: (ppid, cpu seconds)} of `root` (default: this process) and all its live descendants"
    root,procs = root or os.getpid(),{}
    for d in os.listdir('/proc'):
        if d.isdigit() and (st:=_stat(int(d))): procs[int(d)] = st
    out,todo = {},[root]
    while todo:
        p = todo.pop()
        if p in procs and p not in out:
            out[p] = procs[p]
            todo += [c for c,(pp,_) in procs.items() if pp==p]
    return out

def _hwm(pid) -> float:
    "Peak RSS of `pid` in MiB (VmHWM)"
    try:
        for line in Path(f'/proc/{pid}/status').read_text().splitlines():
            if line.startswith('VmHWM:'): return int(line.split()[1])/1024
    except OSError: pass
    return 0.

def _role(pid, t) -> str:
    if pid==os.getpid(): return 'main'
    try: comm = Path(f'/proc/{pid}/comm').read_text().strip()
    except OSError: comm = '?'
    if comm.startswith('redis'): return 'redis'
    if not any(pp==pid for pp,_ in t.values()): return 'worker'
    try: cmd = Path(f'/proc/{pid}/cmdline').read_text()
    except OSError: cmd = ''
    return next((f'{k} CLI' for k in ('bgtasks-worker', 'dramatiq') if k in cmd), comm)  # the parent of worker processes

class Meter:
    "Wall time, CPU of the whole process tree, and each process's peak RSS, from `start` to `stop`"
    def start(self):
        self.tree0 = tree()
        self.cpu0 = sum(c for _,c in self.tree0.values())
        self.t0 = time.monotonic()
    def stop(self, n):
        wall,t = time.monotonic()-self.t0,tree()
        cpu = sum(c for _,c in t.values())-self.cpu0
        rss = sorted(([_role(p, t), round(_hwm(p), 1)] for p in t), key=lambda o: (o[0]!='main', o[0]))
        by_role = {}  # CPU µs per job of each kind of process (the main one, the workers, Redis...)
        for p,(_,c) in t.items():
            r = _role(p, t)
            by_role[r] = by_role.get(r, 0)+(c-self.tree0.get(p, (None, 0))[1])/n*1e6
        return dict(n=n, wall=wall, jobs_s=n/wall, cpu_s=cpu, cpu_us_job=cpu/n*1e6, rss=rss,
                    cpu_us_job_by_role={k: round(v) for k,v in by_role.items()})

def until(cond, timeout, what='jobs done'):
    "Poll `cond()` every `POLL` seconds until it is true, for at most `timeout` seconds"
    deadline = time.monotonic()+timeout
    while not (v:=cond()):
        if time.monotonic()>deadline: raise TimeoutError(f'{what}: not after {timeout:.0f}s')
        time.sleep(POLL)
    return v

async def auntil(cond, timeout, what='jobs done'):
    deadline = time.monotonic()+timeout
    while not cond():
        if time.monotonic()>deadline: raise TimeoutError(f'{what}: not after {timeout:.0f}s')
        await asyncio.sleep(POLL)

# ---------------------------------------------------------------- helpers of the case process

KIDS = []  # processes this case process started

def spawn(cmd, d, name, env=None):
    "Start `cmd` in `d` (same process group as this one), its output to `d/name.log`"
    p = subprocess.Popen([str(c) for c in cmd], cwd=d, env=os.environ|(env or {}), stdout=open(d/f'{name}.log', 'ab'), stderr=subprocess.STDOUT)
    KIDS.append(p)
    return p

def stop_kids():
    "SIGTERM each child, wait a little, then SIGKILL it and whatever it left"
    for p in reversed(KIDS):
        left = [q for q in tree(p.pid) if q!=p.pid]
        if p.poll() is None: p.terminate()
        try: p.wait(15)
        except subprocess.TimeoutExpired: pass
        for q in [p.pid, *left]:
            try: os.kill(q, signal.SIGKILL)
            except (ProcessLookupError, PermissionError): pass
        p.wait()

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def _path(d) -> str:
    "PYTHONPATH for a case's processes: `d` (its app module), then whatever this run was given (to A/B two checkouts)"
    return os.pathsep.join([str(d), *filter(None, [os.environ.get('PYTHONPATH')])])

def start_redis(d):
    "A fresh redis-server on a free loopback port, append-only file in `d`; its URL"
    import redis
    port = free_port()
    (d/'redis').mkdir()
    p = spawn(['redis-server', '--port', port, '--bind', '127.0.0.1', '--dir', d/'redis', '--save', '', '--appendonly', 'yes',
               '--daemonize', 'no'], d, 'redis')
    url = f'redis://127.0.0.1:{port}/0'
    def up():
        if p.poll() is not None: raise RuntimeError((d/'redis.log').read_text()[-2000:])
        try: return redis.Redis.from_url(url).ping()
        except redis.ConnectionError: return False
    until(up, 10, 'redis-server answering')
    return url

def start_dramatiq(cmd, d, name, env, procs=2):
    "Start a Dramatiq-based worker command and wait until each of its `procs` processes is ready"
    p = spawn(cmd, d, name, env)
    def ready():
        if p.poll() is not None: raise RuntimeError(f'{name} exited: ' + (d/f'{name}.log').read_text()[-2000:])
        return (d/f'{name}.log').read_text().count('Worker process is ready')>=procs
    until(ready, 60, f'{name} ready')
    return p

# ---------------------------------------------------------------- the cases (each runs in its own process)

BGTASKS_APP = '''
import os
from starlette.applications import Starlette
from bgtasks import task, Jobs
app = Starlette()
jobs = Jobs(app, os.environ.get('BENCH_DB', 'jobs.db'), workers=4, prefix=None, redis=os.environ.get('REDIS_URL') or None)
@task
def noop(i:int): return i
@task
async def anoop(i:int): return i
'''

def _bgtasks(n, d, timeout, mode):
    (d/'bench_app.py').write_text(BGTASKS_APP)
    sys.path.insert(0, str(d))
    env = dict(BENCH_DB=str(d/'jobs.db'), PYTHONPATH=_path(d))
    if mode=='redis':
        env['REDIS_URL'] = start_redis(d)
        exe = shutil.which('bgtasks-worker')
        cmd = [exe] if exe else [sys.executable, '-c', 'from bgtasks.shared import worker_main; worker_main()']
        start_dramatiq([*cmd, 'bench_app:app', '-p', 2, '-t', 2], d, 'workers', env)
    os.environ.update(env)
    import bench_app
    jobs,m = bench_app.jobs,Meter()
    def done():
        c = jobs.counts()
        if c['failed'] or c['cancelled']: raise RuntimeError(f'jobs did not succeed: {c}')
        return c['succeeded']>=n
    def produce():
        # (a version before `Jobs.use` sends every job made outside a request to the Jobs set up last: this one)
        with jobs.use() if hasattr(jobs, 'use') else contextlib.nullcontext():
            for i in range(n): bench_app.noop.bg(i)
    async def main():
        async with jobs.app.router.lifespan_context(jobs.app):
            m.start()
            if mode=='loop':
                for i in range(n):
                    bench_app.anoop.bg(i)
                    if i%100==99: await asyncio.sleep(0)
            else: await asyncio.to_thread(produce)
            await auntil(done, timeout)
            return m.stop(n)
    return asyncio.run(main())

def case_bgtasks_thread(n, d, timeout): return _bgtasks(n, d, timeout, 'thread')
def case_bgtasks_loop(n, d, timeout): return _bgtasks(n, d, timeout, 'loop')
def case_bgtasks_redis(n, d, timeout): return _bgtasks(n, d, timeout, 'redis')

DRAMATIQ_APP = '''
import os, dramatiq, redis
from dramatiq.brokers.redis import RedisBroker
dramatiq.set_broker(RedisBroker(url=os.environ['REDIS_URL']))
r = redis.Redis.from_url(os.environ['REDIS_URL'])
@dramatiq.actor
def noop(i):
    r.incr('bench:done')
    return i
'''

def case_dramatiq_raw(n, d, timeout):
    (d/'raw_app.py').write_text(DRAMATIQ_APP)
    sys.path.insert(0, str(d))
    env = dict(REDIS_URL=start_redis(d), PYTHONPATH=_path(d))
    start_dramatiq([sys.executable, '-m', 'dramatiq', 'raw_app', '-p', 2, '-t', 2], d, 'workers', env)
    os.environ.update(env)
    import raw_app
    m = Meter()
    m.start()
    for i in range(n): raw_app.noop.send(i)
    until(lambda: int(raw_app.r.get('bench:done') or 0)>=n, timeout)
    return m.stop(n)

def _huey(n, d, timeout, fsync):
    import sqlite3
    from huey import SqliteHuey
    from huey.storage import SqliteStorage
    class NormalStorage(SqliteStorage):  # synchronous=NORMAL, as bgtasks' store
        def _create_connection(self):
            conn = super()._create_connection()
            conn.execute('pragma synchronous=1')
            return conn
    class NormalHuey(SqliteHuey): storage_class = NormalStorage
    db = d/'huey.db'
    huey = NormalHuey(filename=str(db)) if fsync=='normal' else SqliteHuey(filename=str(db), fsync=fsync)
    @huey.task()
    def noop(i): return i
    consumer = huey.create_consumer(workers=4, worker_type='thread')
    consumer.start()  # in the main thread: it sets signal handlers
    con = sqlite3.connect(db, timeout=30)
    try:
        m = Meter()
        m.start()
        for i in range(n): noop(i)
        until(lambda: con.execute('select count(*) from kv where queue=?', [huey.name]).fetchone()[0]>=n, timeout)
        return m.stop(n)
    finally: consumer.stop(graceful=True)

def case_huey_default(n, d, timeout): return _huey(n, d, timeout, None)
def case_huey_normal(n, d, timeout): return _huey(n, d, timeout, 'normal')
def case_huey_nofsync(n, d, timeout): return _huey(n, d, timeout, False)

def case_taskflow(n, d, timeout):
    import sqlite3
    from fastapi_taskflow import TaskManager, QueueConfig, ManagedBackgroundTasks
    db = d/'tasks.db'
    tm = TaskManager(snapshot_db=str(db), requeue_pending=True, max_sync_threads=4, queues={'default': QueueConfig(concurrency=4)})
    @tm.task()
    def noop(i:int): return i
    async def main():
        await tm.startup()
        con = sqlite3.connect(db, timeout=30)
        try:
            m,bt = Meter(),ManagedBackgroundTasks(tm)
            m.start()
            for i in range(n):
                bt.add_task(noop, i)
                if i%100==99: await asyncio.sleep(0)
            await auntil(lambda: con.execute("select count(*) from task_snapshots where status='success'").fetchone()[0]>=n, timeout)
            return m.stop(n)
        finally: await tm.shutdown()
    return asyncio.run(main())

def case_dbos(n, d, timeout):
    import logging, sqlite3
    from dbos import DBOS
    db = d/'dbos.sqlite'
    DBOS(config={'name': 'bench', 'system_database_url': f'sqlite:///{db}', 'run_admin_server': False})
    logging.getLogger('dbos').setLevel(logging.WARNING)
    @DBOS.step()
    def step(i:int): return i
    @DBOS.workflow()
    def noop(i:int): return step(i)
    DBOS.launch()
    try:
        q = DBOS.register_queue('bench', worker_concurrency=4, polling_interval_sec=0.01)
        con = sqlite3.connect(db, timeout=30)
        m = Meter()
        m.start()
        for i in range(n): q.enqueue(noop, i)
        until(lambda: con.execute("select count(*) from workflow_status where status='SUCCESS'").fetchone()[0]>=n, timeout)
        return m.stop(n)
    finally: DBOS.destroy()

CASES = {  # name: (label, how it runs, the packages it needs)
    'bgtasks_thread': ('bgtasks SQLite, producer thread', 'embedded, 4 workers; WAL, synchronous=NORMAL', ['bgtasks']),
    'bgtasks_loop': ('bgtasks SQLite, event-loop producer', 'embedded, async def task; WAL, synchronous=NORMAL', ['bgtasks']),
    'bgtasks_redis': ('bgtasks Redis + Dramatiq', 'bgtasks-worker -p 2 -t 2; Redis AOF everysec', ['bgtasks', 'dramatiq', 'redis']),
    'dramatiq_raw': ('Dramatiq + Redis (raw)', 'dramatiq -p 2 -t 2, actor INCRs a key; Redis AOF everysec', ['dramatiq', 'redis']),
    'huey_default': ('Huey SqliteHuey, default', '4 consumer threads in-process; WAL, synchronous=FULL', ['huey']),
    'huey_normal': ('Huey SqliteHuey, synchronous=NORMAL', '4 consumer threads in-process; WAL, synchronous=NORMAL', ['huey']),
    'huey_nofsync': ('Huey SqliteHuey, fsync=False', '4 consumer threads in-process; WAL, synchronous=OFF', ['huey']),
    'taskflow': ('fastapi-taskflow, SQLite', 'queue concurrency 4, 4 sync threads; queued tasks in memory, each finish written',
                 ['fastapi_taskflow']),
    'dbos': ('DBOS, SQLite', 'queue worker_concurrency=4, polling 10 ms; rollback journal, synchronous=FULL', ['dbos']),
}
BASE = 'bgtasks_thread'

def run_case(name, n, d, timeout):
    "In the case process: run case `name`, print its result as one JSON line"
    d = Path(d)
    try: res = globals()[f'case_{name}'](n, d, timeout)
    finally: stop_kids()
    print('RESULT ' + json.dumps(res), flush=True)

# ---------------------------------------------------------------- the parent: rounds, medians, table

def missing(name) -> list:
    mods = [m for m in CASES[name][2] if importlib.util.find_spec(m) is None]
    if 'redis' in CASES[name][2] and not shutil.which('redis-server'): mods.append('redis-server')
    return mods

def one(name, n, timeout) -> dict:
    "Run case `name` in a fresh process and wait for it (and so its children), with `os.wait4` for its whole CPU"
    d = Path(tempfile.mkdtemp(prefix=f'bgtasks-peers-{name}-'))
    out,err = open(d/'case.out', 'w+'),open(d/'case.err', 'w+')
    try:
        p = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), '--case', name, '--jobs', str(n), '--dir', str(d), '--timeout', str(timeout)],
                             cwd=d, stdout=out, stderr=err, start_new_session=True)
        deadline,ru = time.monotonic()+timeout+90,None
        while time.monotonic()<deadline:
            pid,status,ru = os.wait4(p.pid, os.WNOHANG)
            if pid: break
            time.sleep(0.05)
        else:
            os.killpg(p.pid, signal.SIGKILL)
            _,status,ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        try: os.killpg(p.pid, signal.SIGKILL)  # anything it left behind
        except ProcessLookupError: pass
        out.seek(0); err.seek(0)
        lines = [ln for ln in out.read().splitlines() if ln.startswith('RESULT ')]
        if p.returncode or not lines:
            last = ([ln.strip() for ln in err.read().splitlines() if ln.strip()] or ['no output'])[-1]
            return dict(error=f'exit {p.returncode}: {last[-300:]}')
        r = json.loads(lines[-1][7:])
        r['cpu_total_s'] = ru.ru_utime+ru.ru_stime
        return r
    finally:
        out.close(); err.close()
        shutil.rmtree(d, ignore_errors=True)

def rss_text(rss) -> str:
    "'main 71 · worker 52/51 · redis 9': peak RSS (MiB) per process, grouped by role"
    by = {}
    for role,mib in rss: by.setdefault(role, []).append(mib)
    return ' · '.join(f"{role} {'/'.join(str(round(v)) for v in sorted(vs, reverse=True))}" for role,vs in by.items())

def summary(runs) -> dict:
    ok = [r for r in runs if 'error' not in r]
    if not ok: return dict(error=runs[-1]['error'])
    med = lambda k: statistics.median(r[k] for r in ok)
    mid = sorted(ok, key=lambda r: r['jobs_s'])[len(ok)//2]
    return dict(jobs_s=med('jobs_s'), cpu_us_job=med('cpu_us_job'), cpu_total_us_job=med('cpu_total_s')/ok[0]['n']*1e6,
                rss=mid['rss'], rounds_ok=len(ok), **({'errors': [r['error'] for r in runs if 'error' in r]} if len(ok)<len(runs) else {}))

def table(res, n, rounds) -> str:
    base = res.get(BASE, {}).get('jobs_s')
    rows = [f'| case ({n:,} jobs, median of {rounds}) | how | jobs/s | CPU µs/job | peak RSS MiB per process | vs {CASES[BASE][0]} |', '|---|---|---:|---:|---|---:|']
    for name,r in res.items():
        label,how,_ = CASES[name]
        if 'jobs_s' not in r:
            rows.append(f"| {label} | {how} | — | — | — | {r.get('skipped') or r.get('error')} |")
            continue
        ratio = f"{r['jobs_s']/base:.2f}x" if base else '—'
        rows.append(f"| {label} | {how} | {r['jobs_s']:,.0f} | {r['cpu_us_job']:,.0f} | {rss_text(r['rss'])} | {ratio} |")
    return '\n'.join(rows)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--jobs', type=int, default=5000)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--only', help='comma-separated cases: ' + ','.join(CASES))
    p.add_argument('--timeout', type=float, default=120, help='seconds a case may take to finish its jobs')
    p.add_argument('--out', default=str(HERE/'peers_results.json'))
    p.add_argument('--case', help=argparse.SUPPRESS)
    p.add_argument('--dir', help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.case: return run_case(a.case, a.jobs, a.dir, a.timeout)
    names = a.only.split(',') if a.only else list(CASES)
    if bad:=[c for c in names if c not in CASES]: p.error(f'unknown case(s) {bad}; known: {list(CASES)}')
    skip = {c: f"not installed: {', '.join(m)}" for c in names if (m:=missing(c))}
    runs = {c: [] for c in names if c not in skip}
    for rnd in range(a.rounds):
        for c in runs:
            r = one(c, a.jobs, a.timeout)
            runs[c].append(r)
            print(f"round {rnd+1} {c}: " + (r['error'] if 'error' in r else f"{r['jobs_s']:,.0f} jobs/s, {r['cpu_us_job']:,.0f} µs CPU/job"),
                  file=sys.stderr, flush=True)
    res = {c: (dict(skipped=skip[c]) if c in skip else summary(runs[c])) for c in names}
    md = table(res, a.jobs, a.rounds)
    versions = {}
    for m in ('bgtasks', 'dramatiq', 'redis', 'huey', 'fastapi-taskflow', 'dbos'):
        try: versions[m] = __import__('importlib.metadata').metadata.version(m)
        except Exception: pass
    try: versions['redis-server'] = subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.split()[2]
    except Exception: pass
    out = dict(machine=dict(cpus=os.cpu_count(), python=platform.python_version(), platform=platform.platform()), versions=versions,
               jobs=a.jobs, rounds=a.rounds, results=res, runs=runs, table=md,
               notes='jobs_s, cpu_us_job: medians of the rounds; cpu_us_job is CPU of all the case\'s processes (incl. Redis) from first '
                     'enqueue to all done (/proc/PID/stat); cpu_total_us_job adds start-up and shut-down (os.wait4 of the case process); '
                     'rss: VmHWM in MiB of each process when all were done, from the median round.')
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(md)

if __name__=='__main__': main()
