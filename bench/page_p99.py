"""A page's p99 latency while CPU-bound `def` jobs run: on the workers' threads, and with `process=True`.

The measurement of lesson nbs/02_async.ipynb (cell cpul0002, "What the warning is about, measured"), as a script.
A uvicorn process (`serve_process`, 127.0.0.1) serves a FastHTML app with `Jobs(app, <sqlite file>, workers=4,
prefix=None)`, a page `/page` (`P('ok')`), and one task body, `spin(ms)`, 5 ms of pure-Python busy loop, as two tasks:
`spin_thread` (a plain `def` job, run in a worker thread) and `spin_process` (`process=True`, run in the process pool).
From this script, one `httpx.Client` (30 s timeout) loads `/page` over and over and the 99th percentile of those loads is taken:
- idle: 300 loads with no job (after 100 that warm the server up);
- threads: `/start?kind=thread&n=1000&ms=5` stores 1000 `spin_thread` jobs, then the page is loaded while any is queued
  or running (asked of `/left` every 25 loads), at least 300 and at most 3000 loads;
- process: the same with 1000 `spin_process` jobs.
- floor: no job, but one pure-Python busy loop per core in processes of their own at the pool's niceness
  (`bgtasks.policy.POOL_NICE`), 1500 loads: what cores kept busy at that priority cost the page on this machine,
  with no bgtasks in the way; the floor under `process`.
- nap: 1000 `process=True` jobs that sleep 5 ms instead of computing: the server's own bookkeeping for the jobs, with
  idle cores.
Between the two, the script waits (at most 60 s) until no job is left, and at the end checks that none failed. The
server's log is checked for the GIL warning the lesson shows (`spin_thread kept the GIL`, and none for `spin_process`).
Each round is a fresh server and database; each figure is the median of `--rounds` rounds, and the ratios are to idle
(of the medians; per-round figures are in the JSON).

Rerun: python bench/page_p99.py [--rounds 3] [--out bench/page_p99_results.json]
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
import httpx
from fastcore.net import waitfor
from bgtasks.servers import serve_process
from bgtasks.policy import POOL_NICE

CPU_APP = """
import os, time
from fasthtml.common import *
from bgtasks import task, Jobs
app, rt = fast_app()
jobs = Jobs(app, os.environ['JOBS_DB'], workers=4, prefix=None)

def spin(ms:float):
    end = time.perf_counter()+ms/1000
    while time.perf_counter()<end: pass

in_threads,in_processes = task(spin, name='spin_thread'),task(spin, name='spin_process', process=True)
def nap(ms:float): time.sleep(ms/1000)
napping = task(nap, name='nap_process', process=True)

@rt('/page')
def page(): return P('ok')

@rt('/start')
def start(kind:str, n:int, ms:float):
    t = dict(thread=in_threads, process=in_processes, nap=napping)[kind]
    for _ in range(n): t.bg(ms)

@rt('/left')
def left(): c = jobs.counts(); return {'left': c['queued']+c['running'], 'failed': c['failed']}
"""

def p99(cli, busy=lambda: False, most:int=3000) -> tuple:
    "99th percentile (ms) of page loads made while `busy()` (asked every 25 loads), at least 300 and at most `most`"
    ts = []
    while len(ts)<300 or (len(ts)<most and (len(ts)%25 or busy())):
        t0 = time.perf_counter()
        cli.get('/page').raise_for_status()
        ts.append((time.perf_counter()-t0)*1000)
    return statistics.quantiles(ts, n=100)[98], len(ts)

def floor(cli) -> tuple:
    "p99 of 1500 page loads beside one busy loop per core at the pool's niceness (processes of their own, killed after)"
    loops = [subprocess.Popen([sys.executable, '-c', 'while True: pass'], preexec_fn=lambda: os.nice(POOL_NICE))
             for _ in range(os.cpu_count())]
    try: return p99(cli, lambda: True, most=1500)
    finally:
        for q in loops: q.kill(); q.wait()

def one_round(n, ms):
    "The lesson's cell: idle, thread, process p99 on a fresh server, and the floor under process; and its checks"
    d = Path(tempfile.mkdtemp(prefix='bgtasks-p99-'))
    (d/'cpu_app.py').write_text(CPU_APP)
    pages = {}
    with serve_process('cpu_app:app', cwd=d, env={'JOBS_DB': str(d/'jobs.db')}) as srv, \
         httpx.Client(base_url=srv.url, timeout=30) as cli:
        for _ in range(100): cli.get('/page')  # warm up: the first loads of a fresh server are not its idle speed
        pages['idle'] = p99(cli)
        pages['floor'] = floor(cli)
        for kind in ('thread', 'process', 'nap'):
            t0 = time.perf_counter()
            cli.get('/start', params={'kind': kind, 'n': n, 'ms': ms}).raise_for_status()
            pages[kind] = p99(cli, lambda: cli.get('/left').json()['left']>0)
            waitfor(lambda: cli.get('/left').json()['left']==0, timeout=60)
            pages[kind] += (time.perf_counter()-t0,)
        left = cli.get('/left').json()
    log = Path(srv.log).read_text()
    checks = dict(all_done_none_failed=left=={'left': 0, 'failed': 0}, thread_warned='spin_thread kept the GIL' in log,
                  process_not_warned='spin_process kept' not in log)
    return dict(p99_ms={k: v[0] for k,v in pages.items()}, loads={k: v[1] for k,v in pages.items()},
                jobs_s={k: v[2] for k,v in pages.items() if len(v)>2}, checks=checks)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--jobs', type=int, default=1000)
    p.add_argument('--ms', type=float, default=5, help='CPU milliseconds per job')
    p.add_argument('--out', default=str(Path(__file__).with_name('page_p99_results.json')))
    a = p.parse_args()
    runs = []
    for rnd in range(a.rounds):
        r = one_round(a.jobs, a.ms)
        runs.append(r)
        print(f"round {rnd+1}: " + ', '.join(f"{k} p99 {v:.1f} ms over {r['loads'][k]} loads" for k,v in r['p99_ms'].items())
              + f"; checks {r['checks']}", file=sys.stderr, flush=True)
    kinds = ('idle', 'thread', 'process', 'floor', 'nap')
    med = {k: statistics.median(r['p99_ms'][k] for r in runs) for k in kinds}
    res = dict(p99_ms=med, vs_idle={k: med[k]/med['idle'] for k in kinds},
               loads={k: statistics.median(r['loads'][k] for r in runs) for k in kinds},
               checks_passed=all(all(r['checks'].values()) for r in runs))
    md = '\n'.join([f'| page p99 ({a.jobs} def jobs of {a.ms:g} ms CPU, median of {a.rounds}) | idle | threads | process=True | busy loops, no job | process=True, sleeping |',
                    '|---|---:|---:|---:|---:|---:|',
                    '| p99 ms | ' + ' | '.join(f'{med[k]:.1f}' for k in kinds) + ' |',
                    '| vs idle | ' + ' | '.join(f"{res['vs_idle'][k]:.1f}x" for k in kinds) + ' |'])
    out = dict(bench='page_p99', date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
               machine=dict(cpus=os.cpu_count(), python=platform.python_version(), platform=platform.platform()),
               versions={m: version(m) for m in ('bgtasks', 'python-fasthtml', 'starlette', 'uvicorn', 'httpx')},
               settings=vars(a), results=res, runs=runs, table=md)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(md)
    return 0 if res['checks_passed'] else 1

if __name__=='__main__': sys.exit(main())
