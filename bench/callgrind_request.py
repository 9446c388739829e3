"""Instructions per request of a FastHTML handler that creates a durable job, counted by callgrind (no timing noise).

A FastHTML app with `Jobs(app, <sqlite file>, workers=4)` and a route returning a page and `noop.bg(i)`; `N` requests
through Starlette's TestClient, then `jobs.drain()`. Run it under valgrind for two values of N: the difference divided by
the difference in N is the cost of one request (TestClient's share included, which is most of it), start-up excluded.
Compare two versions by running the same commands with `PYTHONPATH=<a checkout of the other version>`.

Rerun:
    PY=$(python -c 'import sys; print(sys.executable)')
    for n in 200 1200; do valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.$n.out $PY bench/callgrind_request.py $n 2>&1 | grep Collected; done
"""
import os, sys, tempfile
from fasthtml.common import *
from starlette.testclient import TestClient
from bgtasks import task, Jobs

app, rt = fast_app()
jobs = Jobs(app, os.path.join(tempfile.mkdtemp(), 'cg.db'), workers=4)

@task
def noop(i:int): return i

@rt
def hit(i:int): return P('ok'), noop.bg(i)

if __name__ == '__main__':
    N = int(sys.argv[1]) if len(sys.argv)>1 else 1000
    with TestClient(app) as cli:
        for i in range(N): cli.get('/hit', params={'i': i})
        jobs.drain(30)
    print(jobs.counts())
