"""Instructions per durable job, counted by callgrind (no timing noise): N no-op jobs made and run in one process.

A Starlette app with `Jobs(app, <sqlite file>, workers=4, prefix=None)` inside its lifespan; `N` jobs of an `async def`
no-op made on the event loop (`--loop`), or of a `def` no-op made from another thread (each written before `.bg()`
returns), then `jobs.drain()`. Run it under valgrind for two values of N: the difference in instructions divided by the
difference in N is the cost of one job, start-up excluded. Compare versions with `PYTHONPATH=<a checkout of the other>`.
`--chains`: N three-step chains of the async no-op instead (lesson 03c), for the cost of one chain against `--loop`'s
one job; `--group`: one group of N of them with a fan-in step.

Rerun:
    PY=$(python -c 'import sys; print(sys.executable)')
    for n in 500 2500; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cgj.$n.out $PY bench/callgrind_jobs.py $n --loop 2>&1 | grep Collected; done
"""
import asyncio, os, sys, tempfile
from starlette.applications import Starlette
from bgtasks import task, Jobs

app = Starlette()
jobs = Jobs(app, os.path.join(tempfile.mkdtemp(), 'cg.db'), workers=4, prefix=None)

@task
def noop(i:int): return i

@task
async def anoop(i:int): return i

@task
def tally(group:dict): return group['succeeded']

async def main(n:int, loop:bool, flows:str=None):
    async with app.router.lifespan_context(app):
        if flows=='chains':  # n three-step chains of async no-ops, made on the loop (lesson 03c)
            from bgtasks.workflows import chain
            for i in range(n):
                chain(anoop.step(i), anoop.step(i), anoop.step(i))
                if i%100==99: await asyncio.sleep(0)
        elif flows=='group':  # one group of n async no-ops, with a fan-in
            from bgtasks.workflows import group
            group([anoop.step(i) for i in range(n)], then=tally)
        elif loop:
            for i in range(n):
                anoop.bg(i)
                if i%100==99: await asyncio.sleep(0)  # let the workers run
        else:
            def produce():
                with jobs.use():
                    for i in range(n): noop.bg(i)
            await asyncio.to_thread(produce)
        await asyncio.to_thread(jobs.drain, 60)
    print(jobs.counts()['succeeded'])

if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]), '--loop' in sys.argv,
                     'chains' if '--chains' in sys.argv else 'group' if '--group' in sys.argv else None))
