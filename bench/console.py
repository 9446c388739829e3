"""How fast the job console's pages are with 100,000 jobs in the table.

Fills a fresh SQLite file with `--jobs` jobs (two tasks, mostly succeeded, some failed; 100 browser sessions, so one
session owns a hundredth of them), then times the pages in-process with Starlette's TestClient, as that one session
(and, for the admin view, as an admin): its dashboard, the dashboard filtered by state and by task, the tenth page of
it (through the "Older" links, a cursor each), a job's page, and the admin view of everyone's jobs. Reports the p50 and
p90 of `--requests` requests per page. Results go to bench/console_results.json.

Rerun: python bench/console.py [--jobs 100000] [--requests 50]
"""
import argparse, json, os, platform, random, re, statistics, tempfile, time
from pathlib import Path
from fasthtml.common import fast_app
from starlette.testclient import TestClient
from bgtasks import task, Jobs
from bgtasks.task import Job, new_id
from bgtasks.tracking import JobStore, OWNER_COOKIE, sign_owner, _owner_key

@task
def resize(image:str): return image

@task
def report(title:str): return title

def fill(store, n):
    "`n` ended jobs over 100 owners; return the owners"
    owners,rng,jobs = [new_id() for _ in range(100)],random.Random(1),[]
    for i in range(n):
        j = Job(resize if i%3 else report, {'image': f'{i}.png'} if i%3 else {'title': f'Q{i}'}, owner=owners[i%100])
        j.state = 'failed' if rng.random()<0.05 else 'succeeded'
        if j.state=='failed': j.error = 'OSError: disk quota exceeded'
        else: j.result = j.args
        j.started = j.finished = j.created
        jobs.append(j)
        if len(jobs)==5000: store.write(new=jobs); jobs = []
    store.write(new=jobs)
    return owners

def timed(cli, url, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = cli.get(url)
        ts.append((time.perf_counter()-t0)*1000)
        assert r.status_code==200, (url, r.status_code)
    ts.sort()
    return dict(p50_ms=round(statistics.median(ts), 2), p90_ms=round(ts[int(len(ts)*0.9)-1], 2))

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--jobs', type=int, default=100_000)
    ap.add_argument('--requests', type=int, default=50)
    a = ap.parse_args()
    db = Path(tempfile.mkdtemp())/'jobs.db'
    t0 = time.perf_counter()
    owners = fill(JobStore(db), a.jobs)
    filled = time.perf_counter()-t0
    app, rt = fast_app()
    jobs = Jobs(app, db, workers=1, admin=lambda req: req.headers.get('x-admin')=='yes')
    me = owners[0]
    with TestClient(app, cookies={OWNER_COOKIE: sign_owner(_owner_key(jobs), me)}) as cli:
        some = jobs.find(owner=me, limit=1)[0].id
        url,pages = '/jobs/',0
        while pages<9:  # the tenth page, reached the way a user does
            url = re.search(r'href="([^"]+)">Older', cli.get(url).text).group(1).replace('&amp;', '&'); pages += 1
        cases = {'dashboard': '/jobs/', 'dashboard, failed only': '/jobs/?state=failed', 'dashboard, one task': '/jobs/?task=report',
                 'dashboard, 10th page': url, "a job's page": f'/jobs/{some}'}
        res = {k: timed(cli, u, a.requests) for k,u in cases.items()}
        cli.headers['x-admin'] = 'yes'
        res['admin view, every job'] = timed(cli, '/jobs/all', a.requests)
    out = dict(settings=vars(a), machine=dict(cpus=os.cpu_count(), python=platform.python_version()),
               rows=a.jobs, rows_per_session=a.jobs//100, fill_seconds=round(filled, 1), pages=res)
    Path(__file__).with_name('console_results.json').write_text(json.dumps(out, indent=1)+'\n')
    for k,v in res.items(): print(f'{k:28} p50 {v["p50_ms"]:7.2f} ms   p90 {v["p90_ms"]:7.2f} ms')

if __name__=='__main__': main()
