"""One SQLite file shared by several processes: throughput, and recovery after `kill -9`.

Reports, in one run (results go to bench/shared_results.json):
1. Durable no-op jobs/s with 1, 2 and 4 worker processes sharing one file. `--jobs` free jobs are stored with a start time
   a few seconds ahead; the processes (`bgtasks.shared.run_worker`, 4 job workers each) start and register meanwhile, and
   the rate is jobs / (last job's finish - that start time). Against it, the single-process figure as the tracking lesson
   runs it: one process creating its own jobs with `.bg` (claimed as they are stored) and running them, for a `def` task
   (run on the workers' threads) and an `async def` one (run on the event loop).
2. Restart after `kill -9`: a process creates `--pending` jobs (claimed by it as they are stored) and is killed while the
   first are running; a new process starts on the file. Time from the new process's start until all are done, against a
   cold run: a new process on a file holding the same number of free jobs that nobody ever claimed. Goal: at most 1.2x.
With `--before DIR` (a checkout of an earlier version), that version's single-process figures are measured in the same rounds.
Each figure is the median of `--rounds` rounds; the cases alternate within a round so drift hits them all.

Rerun: python bench/shared_store.py [--jobs 20000] [--pending 10000] [--rounds 3] [--before DIR]
"""
import argparse, json, os, platform, signal, statistics, subprocess, sys, tempfile, time
from pathlib import Path

APP = '''
import os, time
from starlette.applications import Starlette
from bgtasks import task, Jobs
app = Starlette()
jobs = Jobs(app, os.environ['BENCH_DB'], workers=4, prefix=None)
@task
def noop(i:int): return i
@task
async def anoop(i:int): return i
'''
RUN = '''
import asyncio, os, sys, time
sys.path.insert(0, os.environ['BENCH_DIR'])
import bench_app
mode = os.environ['MODE']
async def main():
    jobs = bench_app.jobs
    if mode=='worker':
        from bgtasks.shared import run_worker
        return await run_worker(jobs)
    async with jobs.app.router.lifespan_context(jobs.app):  # 'create': make N jobs here, then run them (or be killed)
        n,t0 = int(os.environ['N']),time.time()
        t = getattr(bench_app, os.environ.get('TASK', 'noop'))
        for i in range(n): t.bg(i)
        Path = __import__('pathlib').Path
        Path(os.environ['READY']).write_text(str(t0))
        while jobs.counts()['succeeded']<n: await asyncio.sleep(0.01)
        print(time.time()-t0)
asyncio.run(main())
'''

def store(db):
    from bgtasks.tracking import JobStore
    return JobStore(db)

def fill(db, n, run_at):
    "Store `n` free no-op jobs that may start at `run_at`"
    sys.path.insert(0, str(Path(db).parent))
    import bench_app
    from bgtasks.task import Job
    jobs = []
    for i in range(n):
        j = Job(bench_app.noop, {'i': i}, owner=None)
        j.run_at = run_at
        jobs.append(j)
    store(db).write(new=jobs)

def spawn(d, mode, env=None, src=None):
    e = os.environ | dict(BENCH_DB=str(d/'jobs.db'), BENCH_DIR=str(d), MODE=mode) | (env or {}) | (dict(PYTHONPATH=src) if src else {})
    return subprocess.Popen([sys.executable, '-c', RUN], env=e, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

def wait_done(db, n, timeout=300):
    s,deadline = store(db),time.monotonic()+timeout
    while s.counts()['succeeded']<n:
        if time.monotonic()>deadline: raise TimeoutError(f'{s.counts()}')
        time.sleep(0.01)
    return s

def shared_rate(d, procs, n):
    "Jobs/s of `procs` worker processes draining `n` free jobs that all become due at once"
    db, run_at = d/'jobs.db', time.time()+4+procs
    fill(db, n, run_at)
    ps = [spawn(d, 'worker') for _ in range(procs)]
    try:
        s = wait_done(db, n)
        last = s.db.q("select max(finished) f from jobs")[0]['f']
        from datetime import datetime
        secs = datetime.fromisoformat(last).timestamp()-run_at
        by = {r['worker'] for r in s.db.q('select distinct worker from jobs')}
    finally:
        for p in ps: p.send_signal(signal.SIGTERM)
        for p in ps: p.wait(30)
    return dict(processes=procs, jobs=n, seconds=round(secs, 3), jobs_per_s=round(n/secs), distinct_workers=len(by))

def in_process_rate(d, n, src=None, task='noop'):
    "Jobs/s of one process creating its own `n` jobs of `task` with `.bg` and running them (with the bgtasks source in `src`, if given)"
    p = spawn(d, 'create', dict(N=str(n), READY=str(d/'ready'), TASK=task), src)
    out,_ = p.communicate(timeout=300)
    secs = float(out.strip().splitlines()[-1])
    return dict(processes=1, jobs=n, seconds=round(secs, 3), jobs_per_s=round(n/secs))

def restart_after_kill(d, n):
    "Seconds from a new process's start until `n` jobs are done, after the process holding them was killed with kill -9"
    p = spawn(d, 'create', dict(N=str(n), READY=str(d/'ready')))
    while not (d/'ready').exists(): time.sleep(0.005)
    s = store(d/'jobs.db')
    while s.counts()['succeeded']<1: time.sleep(0.001)
    p.send_signal(signal.SIGKILL); p.wait()
    before = s.counts()
    t0 = time.time()
    q = spawn(d, 'worker')
    try: wait_done(d/'jobs.db', n)
    finally: q.send_signal(signal.SIGTERM); q.wait(30)
    return dict(seconds=round(time.time()-t0, 3), at_kill=before)

def cold(d, n):
    "Seconds from a new process's start until `n` free jobs that nobody claimed are done"
    fill(d/'jobs.db', n, 0.)
    t0 = time.time()
    q = spawn(d, 'worker')
    try: wait_done(d/'jobs.db', n)
    finally: q.send_signal(signal.SIGTERM); q.wait(30)
    return dict(seconds=round(time.time()-t0, 3))

def fresh():
    d = Path(tempfile.mkdtemp(prefix='bgtasks-bench-'))
    (d/'bench_app.py').write_text(APP)
    os.environ['BENCH_DB'] = str(d/'jobs.db')
    for m in [m for m in sys.modules if m=='bench_app']: del sys.modules[m]
    if sys.path and sys.path[0].startswith(tempfile.gettempdir()+'/bgtasks-bench-'): sys.path.pop(0)
    return d

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jobs', type=int, default=20000)
    ap.add_argument('--pending', type=int, default=10000)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--before', help='a checkout of an earlier bgtasks (e.g. `git worktree add /tmp/before b1d5087`): '
                                     'its single-process figure is measured in the same rounds')
    a = ap.parse_args()
    rows = dict(in_process=[], in_process_loop=[], shared1=[], shared2=[], shared4=[], restart=[], cold=[])
    if a.before: rows['in_process_before'],rows['in_process_loop_before'] = [],[]
    for r in range(a.rounds):
        if a.before: rows['in_process_before'].append(in_process_rate(fresh(), a.jobs, a.before))
        rows['in_process'].append(in_process_rate(fresh(), a.jobs))
        if a.before: rows['in_process_loop_before'].append(in_process_rate(fresh(), a.jobs, a.before, 'anoop'))
        rows['in_process_loop'].append(in_process_rate(fresh(), a.jobs, task='anoop'))
        for k in (1, 2, 4): rows[f'shared{k}'].append(shared_rate(fresh(), k, a.jobs))
        rows['restart'].append(restart_after_kill(fresh(), a.pending))
        rows['cold'].append(cold(fresh(), a.pending))
        print(f'round {r+1}:', {k: v[-1] for k,v in rows.items()}, flush=True)
    med = lambda k, f: statistics.median(x[f] for x in rows[k])
    base = med('in_process', 'jobs_per_s')
    summary = {k: med(k, 'jobs_per_s') for k in ('in_process_before', 'in_process', 'in_process_loop_before', 'in_process_loop', 'shared1', 'shared2', 'shared4') if k in rows}
    ratios = {k: round(v/base, 3) for k,v in summary.items()}
    restart_ratio = round(med('restart', 'seconds')/med('cold', 'seconds'), 3)
    out = dict(settings=vars(a), machine=dict(cpus=os.cpu_count(), python=platform.python_version(), platform=platform.platform()),
               runs=rows, median_jobs_per_s=summary, ratio_to_in_process=ratios,
               restart_seconds=med('restart', 'seconds'), cold_seconds=med('cold', 'seconds'),
               restart_over_cold=restart_ratio, restart_goal_met=restart_ratio<=1.2)
    Path(__file__).with_name('shared_results.json').write_text(json.dumps(out, indent=1)+'\n')
    print(json.dumps({k: out[k] for k in ('median_jobs_per_s', 'ratio_to_in_process', 'restart_seconds', 'cold_seconds', 'restart_over_cold', 'restart_goal_met')}, indent=1))

if __name__=='__main__': main()
