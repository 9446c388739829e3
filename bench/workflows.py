"""Durable chains and groups (#17) against plain jobs, in one process with 4 job workers on one SQLite file.

Reports, in one run (results go to bench/workflows_results.json):
1. Chains: `--chains` 3-step chains of no-op `def` jobs, made with `chain(noop.step(..), ..)`, against as many plain
   jobs made with `noop.bg(..)`, all made on the workers' event loop as a request handler would: wall time from the first one made until all have ended, and the ratio per chain
   (goal: a chain costs at most 3.3x one job).
2. Groups: one group of `--members` no-op jobs with a `then=` fan-in step, against as many plain jobs: wall time from
   making it until the fan-in step has ended (goal: at most 1.1x the plain jobs' time until the last has ended).
Each case runs in a fresh process on a fresh file; the cases alternate within a round, and each figure is the median
of `--rounds` rounds.

Rerun: python bench/workflows.py [--chains 3000] [--members 1000] [--rounds 5] [--out FILE]
"""
import argparse, json, os, platform, statistics, subprocess, sys, tempfile, time
from pathlib import Path

RUN = r'''
import asyncio, os, sys, time
from pathlib import Path
from starlette.applications import Starlette
from bgtasks import task, Jobs
from bgtasks.workflows import chain, group

@task
def noop(i:int): return i
@task
def tally(group:dict): return group['succeeded']

async def main():
    case,n = os.environ['CASE'],int(os.environ['N'])
    jobs = Jobs(Starlette(), Path(os.environ['DIR'])/'jobs.db', workers=4, prefix=None)
    await jobs.start()
    live = "select exists(select 1 from jobs where state in ('queued','running')) x"  # one index probe
    t0 = time.perf_counter()
    # made on the workers' event loop, as in a request handler: plain jobs are then written in batches
    if case=='plain': [noop.bg(i) for i in range(n)]
    elif case=='chains': [chain(noop.step(i), noop.step(i), noop.step(i)) for i in range(n)]
    else: group([noop.step(i) for i in range(n)], then=tally)
    end = time.monotonic()+120  # bounded
    await asyncio.sleep(0.002)
    while jobs.store.db.q(live)[0]['x'] or jobs.workers.batch.busy:  # a waiting step counts as queued
        if time.monotonic()>end: raise TimeoutError(jobs.store.counts())
        await asyncio.sleep(0.002)
    c = jobs.store.counts()
    assert c['succeeded']==dict(plain=n, chains=3*n, group=n+1)[case], c
    print(time.perf_counter()-t0)
    await jobs.stop(); jobs.close()
asyncio.run(main())
'''

def one(case, n):
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([sys.executable, '-c', RUN], env=os.environ | dict(CASE=case, N=str(n), DIR=d),
                             capture_output=True, text=True, timeout=300)
        if out.returncode: raise RuntimeError(out.stderr[-2000:])
        return float(out.stdout.split()[-1])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--chains', type=int, default=3000)
    ap.add_argument('--members', type=int, default=1000)
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--out', default=str(Path(__file__).with_name('workflows_results.json')))
    a = ap.parse_args()
    cases = dict(plain_c=('plain', a.chains), chains=('chains', a.chains), plain_g=('plain', a.members), group=('group', a.members))
    t = {k: [] for k in cases}
    for r in range(a.rounds):
        for k,(case,n) in cases.items(): t[k].append(one(case, n))
        print(f'round {r+1}: ' + ', '.join(f'{k} {v[-1]:.3f}s' for k,v in t.items()), flush=True)
    m = {k: statistics.median(v) for k,v in t.items()}
    res = dict(machine=f'{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}',
               date=time.strftime('%Y-%m-%d'), chains=a.chains, members=a.members, rounds=a.rounds,
               seconds=m, chain_per_job=m['chains']/m['plain_c'], group_per_plain=m['group']/m['plain_g'])
    print(f"{a.chains} 3-step chains {m['chains']:.3f}s against {a.chains} jobs {m['plain_c']:.3f}s: "
          f"{res['chain_per_job']:.2f}x per chain (goal <= 3.3x)")
    print(f"a group of {a.members} with a fan-in {m['group']:.3f}s against {a.members} jobs {m['plain_g']:.3f}s: "
          f"{res['group_per_plain']:.2f}x (goal <= 1.1x)")
    Path(a.out).write_text(json.dumps(res, indent=1)+'\n')

if __name__=='__main__': main()
