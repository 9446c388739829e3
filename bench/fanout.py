"""Fan-out to a slow service: 1000 calls of 100 ms, 50 in flight, through two HTTP clients, with and without bgtasks.

The measurement of lesson nbs/05_slow_api.ipynb, section "The client sets the floor" (cells fl00r003 and fl00r005), as a
script. The service is `bgtasks.demo:slow_service` in a uvicorn process of its own (`serve_process`, 127.0.0.1,
BGTASKS_SLOW_DELAY=0.1, `--timeout-keep-alive 75` as in the lesson, so that no pooled connection is closed as a call goes
out on it). The limit is N·L/C = 1000 × 0.1 s / 50 = 2.0 s. For each client with httpx's API, plain
`httpx.AsyncClient` and `httpx_aiohttp.HttpxAiohttpClient` (aiohttp's transport, what `bgtasks.demo.Client` is with the
`fast` extra), both with `httpx.Limits(max_connections=100, max_keepalive_connections=100)` and a 30 s timeout:
- floor ("asyncio"): the N calls, C at a time (`anyio.CapacityLimiter`), in one task group on an event loop of this
  script's main thread, with nothing else around the client; timed from the first start to the last answer;
- bgtasks: one `async def` `@task` job, `fan_out`, that makes the same N calls with the same limiter and client and
  reports progress per call (`job.progress(job.done+1, n)`), run by the lesson's app, `bgtasks.demo.dashboard` with
  `Jobs(..., workers=4)` on a SQLite file, its lifespan run by Starlette's `TestClient`; timed from `.bg()` (called from
  the main thread) until `jobs.wait` sees it ended, and checked: succeeded, result N, done N.
As in the lesson, each client's floor run is preceded by a warm-up of 200 plain calls, and the floor and the job runs
of a client follow each other. Here that sequence (httpx, then httpx-aiohttp) is repeated `--rounds` times, and each
figure is the median of the rounds; the ratios are bgtasks / N·L/C, floor / N·L/C, and bgtasks / floor (of the medians;
the per-round ratios are in the JSON too).

Rerun: python bench/fanout.py [--rounds 3] [--out bench/fanout_results.json]
"""
import argparse, asyncio, json, os, platform, statistics, sys, tempfile, time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
import anyio, httpx
from httpx_aiohttp import HttpxAiohttpClient
from starlette.testclient import TestClient
from bgtasks.demo import dashboard
from bgtasks.servers import serve_process
from bgtasks.task import task

N2,C2,L2 = 1000,50,0.1
clients = {'httpx': httpx.AsyncClient, 'httpx-aiohttp': HttpxAiohttpClient}
limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)

async def fan_out_plain(url:str, client:str, n:int=N2):
    "Seconds for `n` calls, `C2` at a time, with nothing but asyncio around the client"
    lim = anyio.CapacityLimiter(C2)
    async with clients[client](limits=limits, timeout=30) as cli:
        async def one():
            async with lim: (await cli.post(f'{url}/slow', params={'ts': time.time()})).raise_for_status()
        t0 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(n): tg.start_soon(one)
        return time.perf_counter()-t0

@task
async def fan_out(url:str, n:int, concurrency:int, client:str, job):
    "`n` calls to the service at `url`, `concurrency` at a time, through `client`, with progress per call"
    lim = anyio.CapacityLimiter(concurrency)
    async with clients[client](limits=limits, timeout=30) as cli:
        async def one():
            async with lim: (await cli.post(f'{url}/slow', params={'ts': time.time()})).raise_for_status()
            job.progress(job.done+1, n)
        async with anyio.create_task_group() as tg:
            for _ in range(n): tg.start_soon(one)
    return n

def plain(url, client, n, timeout=60):
    "`fan_out_plain` on a fresh event loop of this thread, bounded by `timeout` seconds"
    async def run():
        with anyio.fail_after(timeout): return await fan_out_plain(url, client, n)
    return asyncio.run(run())

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--timeout', type=float, default=60, help='seconds one run (floor or job) may take')
    p.add_argument('--out', default=str(Path(__file__).with_name('fanout_results.json')))
    a = p.parse_args()
    limit = N2*L2/C2
    runs = {(c, m): [] for c in clients for m in ('asyncio', 'bgtasks job')}
    tmp = Path(tempfile.mkdtemp(prefix='bgtasks-fanout-'))
    with serve_process('bgtasks.demo:slow_service', args=['--factory', '--timeout-keep-alive', '75'], env={'BGTASKS_SLOW_DELAY': str(L2)}) as fast_svc:
        app = dashboard(fast_svc.url, tmp/'users.db', workers=4)
        jobs = app.state.jobs
        with TestClient(app):
            for rnd in range(a.rounds):
                for name in clients:
                    plain(fast_svc.url, name, 200, a.timeout)
                    took_plain = plain(fast_svc.url, name, N2, a.timeout)
                    t0 = time.perf_counter()
                    rec = jobs.wait(fan_out.bg(fast_svc.url, N2, C2, name).id, timeout=a.timeout)
                    took_job = time.perf_counter()-t0
                    if (rec.state, rec.result, rec.done)!=('succeeded', N2, N2):
                        raise RuntimeError(f'{name} job ended {rec.state}, result {rec.result}, done {rec.done}: {rec.error}')
                    runs[name, 'asyncio'].append(took_plain)
                    runs[name, 'bgtasks job'].append(took_job)
                    print(f'round {rnd+1} {name:14} asyncio {took_plain:.2f} s ({took_plain/limit:.2f}x the limit)   '
                          f'bgtasks job {took_job:.2f} s ({took_job/limit:.2f}x; {took_job/took_plain:.3f}x its floor)',
                          file=sys.stderr, flush=True)
    res = {}
    for name in clients:
        f,b = runs[name, 'asyncio'],runs[name, 'bgtasks job']
        fm,bm = statistics.median(f),statistics.median(b)
        res[name] = dict(floor_s=fm, bgtasks_s=bm, floor_vs_limit=fm/limit, bgtasks_vs_limit=bm/limit, bgtasks_vs_floor=bm/fm,
                         runs_floor_s=f, runs_bgtasks_s=b, runs_bgtasks_vs_floor=[y/x for x,y in zip(f, b)])
    rows = [f'| client (N={N2}, C={C2}, L={L2} s; limit N·L/C = {limit:.1f} s; median of {a.rounds}) '
            '| asyncio floor s | floor / limit | bgtasks job s | bgtasks / limit | bgtasks / floor |',
            '|---|---:|---:|---:|---:|---:|']
    rows += [f"| {n} | {r['floor_s']:.2f} | {r['floor_vs_limit']:.2f}x | {r['bgtasks_s']:.2f} | {r['bgtasks_vs_limit']:.2f}x "
             f"| {r['bgtasks_vs_floor']:.3f}x |" for n,r in res.items()]
    md = '\n'.join(rows)
    out = dict(bench='fanout', date=datetime.now(timezone.utc).isoformat(timespec='seconds'),
               machine=dict(cpus=os.cpu_count(), python=platform.python_version(), platform=platform.platform()),
               versions={m: version(m) for m in ('bgtasks', 'httpx', 'httpx-aiohttp', 'aiohttp', 'anyio')},
               settings=dict(n=N2, concurrency=C2, latency_s=L2, limit_s=limit, rounds=a.rounds, workers=4),
               results=res, table=md)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(md)

if __name__=='__main__': main()
