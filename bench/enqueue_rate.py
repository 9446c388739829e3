"""Request rate of a handler that creates a durable bgtasks job, against the same handler returning a plain Starlette `BackgroundTask`.

Two FastHTML apps, same route `/hit?i=N`, same task body (`def noop(i): return i`):
- baseline: `return P('ok'), BackgroundTask(noop, i=i)`
- durable:  `return P('ok'), noop.bg(i)` with `Jobs(app, <sqlite file>, workers=4)`: the job row is inserted before the
  response, and the job runs on the worker pool of the same process (its run and state writes are part of the cost).
Each run starts a fresh `python -m uvicorn` (one worker, log-level warning) on a free loopback port with a fresh database,
warms up, then `wrk` (one thread, `--connections` keep-alive connections, `i` counting up per request) loads it for
`--seconds`. Baseline and durable alternate for `--rounds` rounds so drift hits both.

Two rates per run:
- `rps`: what wrk reports (responses per second while loaded);
- `sustained`: requests / (load seconds + seconds the server then needs to finish the jobs still queued). Starlette runs a
  `BackgroundTask` inside the request's own ASGI call, so the baseline ends a run with no backlog and the two rates agree;
  the durable workers can fall behind while requests keep arriving, and that deferred work is charged here.
  (Warm-up jobs are drained before the measured run.) The requirement, durable >= 0.90 x baseline, is judged on the
  medians of `sustained`; the `rps` ratio is reported too.
After each durable run the SQLite file is checked: rows = requests wrk completed (+ warm-up; wrk drops the requests still
in flight when it stops, so rows may exceed that by at most one per connection and wrk run), all `i` distinct, and all
jobs `succeeded` within a bounded wait. Results, with machine info, go to bench/results.json.

With `--framework fastapi` the two apps are FastAPI's: a JSON answer with the no-op in FastAPI's `BackgroundTasks`,
against the same answer with `noop.bg(i)` and `Jobs(app, ..., prefix=None)` (results go to bench/results_fastapi.json).

With `--metrics` (FastHTML), a third app runs in the same rounds: the durable one with `mount_metrics(jobs)` (the
`metrics` extra), its /metrics scraped every second while wrk loads it; its ratio to the baseline is reported beside
the durable one's (results go to bench/results_metrics.json).

Rerun (needs Debian's wrk: `apt-get install -y wrk`):
    python bench/enqueue_rate.py [--seconds 10] [--rounds 3] [--connections 16] [--framework fasthtml|fastapi] [--metrics]
"""
import argparse, json, os, platform, re, shutil, sqlite3, statistics, subprocess, sys, tempfile, threading, time
from importlib.metadata import version
from pathlib import Path
from bgtasks.servers import serve_process

APP = '''from fasthtml.common import *
{imports}
app, rt = fast_app()
{setup}
def noop(i:int): return i
{wrap}
@rt
def hit(i:int): return P('ok'), {bg}
'''
APPS = dict(
    baseline=APP.format(imports='from starlette.background import BackgroundTask', setup='', wrap='',
                        bg='BackgroundTask(noop, i=i)'),
    durable=APP.format(imports='import os\nfrom bgtasks.task import task\nfrom bgtasks.tracking import Jobs',
                       setup="jobs = Jobs(app, os.environ['BENCH_DB'], workers=4)", wrap='noop = task(noop)',
                       bg='noop.bg(i)'))

FASTAPI = '''import os
from fastapi import FastAPI, BackgroundTasks
{imports}
app = FastAPI()
{setup}
{kw}def noop(i:int): return i
{wrap}
@app.get('/hit')
async def hit(i:int, bt:BackgroundTasks):
    {bg}
    return {{'ok': True}}
'''
FASTAPI_APPS = lambda kw: dict(
    baseline=FASTAPI.format(imports='', setup='', wrap='', bg='bt.add_task(noop, i=i)', kw=kw),
    durable=FASTAPI.format(imports='from bgtasks.task import task\nfrom bgtasks.tracking import Jobs',
                           setup="jobs = Jobs(app, os.environ['BENCH_DB'], workers=4, prefix=None)", wrap='noop = task(noop)',
                           bg='noop.bg(i)', kw=kw))

# one wrk thread; `i` starts at the offset given after `--`, so warm-up and measured requests never share an `i`
LUA = '''local i = 0
function init(args) i = tonumber(args[1]) or 0 end
function request() i = i + 1; return wrk.format(nil, "/hit?i=" .. i) end
'''

def wrk(url, seconds, conns, lua, offset=0):
    "Load `url` with wrk for `seconds`; return completed requests, wrk's duration, requests/s and error count"
    cmd = ['wrk', '-t1', f'-c{conns}', f'-d{seconds}s', '-s', lua, url, '--', str(offset)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds+30, check=True).stdout
    n, secs = re.search(r'(\d+) requests in ([\d.]+)s', out).groups()
    errs = sum(map(int, re.findall(r'(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)', out)))
    return dict(requests=int(n), seconds=float(secs), rps=float(re.search(r'Requests/sec:\s*([\d.]+)', out).group(1)),
                errors=errs)

def q(db, sql):
    with sqlite3.connect(db, timeout=10) as c: return c.execute(sql).fetchone()

def drain(db, timeout=60):
    "Seconds until no job in `db` is queued or running (polled, at most `timeout`)"
    start = time.monotonic()
    while q(db, "select count(*) from jobs where state in ('queued','running')")[0] and time.monotonic()-start<timeout:
        time.sleep(0.02)
    return round(time.monotonic()-start, 3)

def scrape(url, stop, every=1.0, most=600):
    "GET `url`/metrics every `every` seconds until `stop` is set (at most `most` times), as a Prometheus server would"
    import httpx
    with httpx.Client(timeout=10) as c:
        for _ in range(most):
            if stop.wait(every): return
            c.get(f'{url}/metrics').raise_for_status()

def run_one(kind, tmp, i, a, lua):
    "Serve the `kind` app in a fresh uvicorn process, warm it up, measure it, check its jobs"
    db, durable = tmp/f'jobs-{kind}-{i}.db', kind!='baseline'
    with serve_process(f'{kind}:app', cwd=tmp, env=dict(BENCH_DB=str(db))) as srv:
        warm = wrk(srv.url, a.warmup, a.connections, lua)
        if durable: drain(db)
        stop = threading.Event()
        scraper = threading.Thread(target=scrape, args=(srv.url, stop), daemon=True) if kind=='metrics' else None
        if scraper: scraper.start()
        res = wrk(srv.url, a.seconds, a.connections, lua, offset=10**9) | dict(warmup_requests=warm['requests'])
        stop.set()
        if scraper: scraper.join(15)
        if durable:
            res['backlog'] = q(db, "select count(*) from jobs where state in ('queued','running')")[0]
            res['drain_s'] = drain(db)
            rows, distinct = q(db, "select count(*), count(distinct json_extract(args,'$.i')) from jobs")
            ok = q(db, "select count(*) from jobs where state='succeeded'")[0]
            sent = warm['requests'] + res['requests']
            problems = [m for bad,m in ((rows<sent, 'fewer rows than completed requests'),
                                        (rows>sent+2*a.connections, 'more rows than requests sent'),
                                        (distinct!=rows, 'an `i` stored twice'), (ok!=rows, 'jobs not succeeded'),
                                        (warm['errors']+res['errors'], 'wrk saw errors')) if bad]
            res['jobs'] = dict(rows=rows, in_flight=rows-sent, distinct_i=distinct, succeeded=ok, ok=not problems,
                               problems=problems)
    res['sustained'] = res['requests']/(res['seconds']+res.get('drain_s', 0))
    return res

def machine():
    pkgs = ['bgtasks', 'python-fasthtml', 'starlette', 'uvicorn', 'fastlite', 'apsw']
    wrk_v = subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split(' [')[0]
    git = lambda *a: subprocess.run(['git', *a], cwd=Path(__file__).parent, capture_output=True, text=True).stdout.strip()
    return dict(cpus=os.cpu_count(), platform=platform.platform(), python=sys.version.split()[0], wrk=wrk_v,
                packages={p: version(p) for p in pkgs}, git_commit=git('rev-parse', 'HEAD'),
                bgtasks_dirty=bool(git('status', '--porcelain', '--', '../bgtasks')))

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seconds', type=int, default=10, help='measured seconds per run')
    p.add_argument('--rounds', type=int, default=3, help='baseline/durable pairs')
    p.add_argument('--connections', type=int, default=16, help='wrk keep-alive connections')
    p.add_argument('--warmup', type=int, default=2, help='warm-up seconds per run')
    p.add_argument('--framework', choices=('fasthtml', 'fastapi'), default='fasthtml',
                   help='fasthtml: page + job as above; fastapi: JSON + `BackgroundTasks` against JSON + `.bg()` (prefix=None)')
    p.add_argument('--async-noop', action='store_true', help='fastapi: the task is `async def` (no thread hop for the baseline)')
    p.add_argument('--metrics', action='store_true',
                   help='fasthtml: a third app in the same rounds, durable with `mount_metrics` and /metrics scraped every second')
    a = p.parse_args()
    if not shutil.which('wrk'):
        print('wrk not found; install it with: apt-get install -y wrk', file=sys.stderr)
        return 2
    runs = dict(baseline=[], durable=[], **(dict(metrics=[]) if a.metrics else {}))
    with tempfile.TemporaryDirectory(prefix='bgtasks-bench-') as d:
        tmp = Path(d)
        apps = FASTAPI_APPS('async ' if a.async_noop else '') if a.framework=='fastapi' else dict(APPS)
        if a.metrics: apps['metrics'] = APPS['durable'].replace("workers=4)\n", "workers=4)\n"
            "from bgtasks.workflows import mount_metrics\nmount_metrics(jobs, allow=lambda req: True)\n", 1)
        for kind,src in apps.items(): (tmp/f'{kind}.py').write_text(src)
        (tmp/'count.lua').write_text(LUA)
        for i in range(a.rounds):
            for kind in runs:
                runs[kind].append(r := run_one(kind, tmp, i, a, str(tmp/'count.lua')))
                msg = f"round {i+1} {kind:8} {r['requests']:6} requests, {r['errors']} errors, {r['rps']:7.1f} req/s"
                if (j:=r.get('jobs')): msg += (f"; {r['backlog']} jobs unfinished at the end, drained in {r['drain_s']:.2f} s; "
                    f"{j['rows']} rows = {r['warmup_requests']}+{r['requests']} completed +{j['in_flight']} in flight, "
                    f"{j['distinct_i']} distinct i, {j['succeeded']} succeeded" + (f"; CHECK FAILED: {', '.join(j['problems'])}" if j['problems'] else ''))
                print(msg, flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ('rps', 'sustained')} for k,v in runs.items()}
    ratio = {m: med['durable'][m]/med['baseline'][m] for m in ('rps', 'sustained')}
    print(f"\n{'round':>6} {'baseline rps':>13} {'durable rps':>12} {'ratio':>6} | {'baseline sust.':>14} {'durable sust.':>13} {'ratio':>6}")
    rows = [(str(i+1), b, d) for i,(b,d) in enumerate(zip(runs['baseline'], runs['durable']))] + [('median', med['baseline'], med['durable'])]
    for n,b,d in rows: print(f"{n:>6} {b['rps']:13.1f} {d['rps']:12.1f} {d['rps']/b['rps']:6.3f} | "
                            f"{b['sustained']:14.1f} {d['sustained']:13.1f} {d['sustained']/b['sustained']:6.3f}")
    checks, met = all(r['jobs']['ok'] for k in runs if k!='baseline' for r in runs[k]), ratio['sustained']>=0.9
    if a.metrics:
        ratio['metrics_sustained'] = med['metrics']['sustained']/med['baseline']['sustained']
        print(f"with /metrics mounted and scraped every second: {ratio['metrics_sustained']:.3f} sustained "
              f"(without: {ratio['sustained']:.3f}; drop {ratio['sustained']-ratio['metrics_sustained']:+.3f})")
    print(f"\ndurable/baseline: {ratio['sustained']:.3f} sustained (requirement >= 0.90: {'met' if met else 'NOT met'}), "
          f"{ratio['rps']:.3f} by wrk's rate; job checks {'passed' if checks else 'FAILED'}")
    out = dict(settings=vars(a), machine=machine(), runs=runs, median=med, ratio=ratio, requirement_met=met,
               job_checks_passed=checks)
    name = ('results_metrics.json' if a.metrics else 'results.json') if a.framework=='fasthtml' else \
           f"results_{a.framework}{'_async' if a.async_noop else ''}.json"
    Path(__file__).with_name(name).write_text(json.dumps(out, indent=2))
    return 0 if checks else 1

if __name__=='__main__': sys.exit(main())
