"""Every headline benchmark of bgtasks in one run, and one markdown table of their figures side by side.

Runs, one after the other, each as a subprocess of its own (its output streamed here with a prefix, its run bounded by
a timeout after which its process group is killed), and collects the JSON each writes:
1. `fanout.py` (lesson 05): 1000 calls of 100 ms, 50 in flight, limit N·L/C = 2 s; one bgtasks job against plain
   asyncio (the floor), with httpx's own transport and with aiohttp's (`httpx_aiohttp.HttpxAiohttpClient`).
2. `enqueue_rate.py` (FastHTML) and `enqueue_rate.py --framework fastapi`: request rate of a handler that stores a
   durable job, against the same handler with Starlette's / FastAPI's `BackgroundTask(s)`; the ratio is of the
   `sustained` rates (requests / (load seconds + seconds to drain the jobs still queued)), wrk's own rate ratio beside it.
3. `peers.py`: durable no-op jobs/s, CPU µs per job and peak RSS per process for bgtasks and its peers.
4. `page_p99.py` (lesson 02): a page's p99 while 1000 CPU-bound `def` jobs of 5 ms run in threads, and in processes;
   beside a busy loop per core at the pool's niceness with no job (the floor under processes); and while the jobs
   in processes sleep instead (the server's bookkeeping alone).
5. `workflows.py` (lesson 03c): 3000 three-step chains against 3000 plain jobs, and a group of 1000 with a fan-in
   against 1000 plain jobs.
Their own defaults are kept except for the rounds (`--rounds`, default 3 each; `--quick`: 1 each). The JSON of each
goes to a temporary directory (enqueue_rate.py writes next to itself, so a copy of it is run there) so that the
committed bench/*results*.json stay as they are; all of it, with the table, machine, date and the wall time of each
part, goes to bench/all_results.json. A part that fails or times out gets a row saying so, and the others still run.

Rerun: python bench/all.py [--quick] [--rounds 3] [--only fanout,enqueue_fasthtml,enqueue_fastapi,peers,page_p99,workflows]
"""
import argparse, json, os, platform, shutil, signal, subprocess, sys, tempfile, threading, time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
# name: (script, extra arguments, output file name, timeout seconds at 3 rounds)
PARTS = dict(
    fanout=('fanout.py', [], 'fanout.json', 300),
    enqueue_fasthtml=('enqueue_rate.py', ['--framework', 'fasthtml'], 'results.json', 600),
    enqueue_fastapi=('enqueue_rate.py', ['--framework', 'fastapi'], 'results_fastapi.json', 600),
    peers=('peers.py', [], 'peers.json', 1500),
    page_p99=('page_p99.py', [], 'page_p99.json', 300),
    workflows=('workflows.py', [], 'workflows.json', 300))

def killpg(pid):
    "Kill the process group `pid` (a part and what it started in its session), if it is still there"
    try: os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError: pass

def run_part(name, rounds, tmp) -> dict:
    "Run part `name` with `rounds` rounds in a process group of its own; its JSON, wall seconds and exit code"
    script,extra,outname,timeout = PARTS[name]
    d = tmp/name
    d.mkdir()
    out = d/outname
    if script=='enqueue_rate.py':  # it writes its results next to itself: run a copy
        shutil.copy(HERE/script, d/script)
        cmd = [sys.executable, str(d/script), *extra, '--rounds', str(rounds)]
    else: cmd = [sys.executable, str(HERE/script), *extra, '--rounds', str(rounds), '--out', str(out)]
    timeout = timeout*max(rounds, 1)/3+60
    print(f'== {name}: {" ".join(cmd[1:])} (timeout {timeout:.0f} s)', file=sys.stderr, flush=True)
    t0,tail = time.monotonic(),[]
    p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    timer = threading.Timer(timeout, killpg, [p.pid])
    timer.start()
    try:
        for line in p.stdout:
            print(f'   {name}| {line.rstrip()}', file=sys.stderr, flush=True)
            tail = (tail+[line.rstrip()])[-20:]
        rc = p.wait()
    finally:
        timer.cancel()
        killpg(p.pid)  # anything the part left behind in its group
    res = dict(cmd=cmd[1:], rc=rc, wall_s=round(time.monotonic()-t0, 1))
    if out.exists(): res['json'] = json.loads(out.read_text())
    if rc or 'json' not in res:
        why = 'killed after the timeout' if rc==-signal.SIGKILL else f'exit {rc}'
        res['error'] = why + ': ' + next((ln for ln in reversed(tail) if ln.strip()), 'no output')[-300:]
    print(f'== {name}: {res["wall_s"]} s' + (f'; {res["error"]}' if 'error' in res else ''), file=sys.stderr, flush=True)
    return res

def fmt_rss(rss): return ' · '.join(f"{role} {mib:.0f}" for role,mib in rss)

def rows(parts) -> list:
    "The table rows: (benchmark, case, figures, ratios)"
    out = []
    def failed(bench, part, case='—'):
        out.append((bench, case, '—', f"FAILED: {part.get('error', 'not run')}"))
    if (p:=parts.get('fanout')):
        if 'json' not in p: failed('fan-out', p)
        else:
            j = p['json']
            s = j['settings']
            for client,label in (('httpx', 'httpx transport'), ('httpx-aiohttp', 'aiohttp transport')):
                r = j['results'][client]
                out.append((f"fan-out {s['n']} × {s['latency_s']:g} s, {s['concurrency']} in flight (limit {s['limit_s']:.1f} s)",
                            f'bgtasks job, {label}', f"{r['bgtasks_s']:.2f} s (asyncio floor {r['floor_s']:.2f} s)",
                            f"{r['bgtasks_vs_limit']:.2f}x N·L/C · {r['bgtasks_vs_floor']:.3f}x floor "
                            f"(floor {r['floor_vs_limit']:.2f}x N·L/C)"))
    for key,fw,base in (('enqueue_fasthtml', 'FastHTML', 'BackgroundTask'), ('enqueue_fastapi', 'FastAPI', 'BackgroundTasks')):
        if not (p:=parts.get(key)): continue
        if 'json' not in p: failed(f'request rate, {fw}', p); continue
        j = p['json']
        m,r = j['median'],j['ratio']
        note = '' if j.get('job_checks_passed') else ' · JOB CHECKS FAILED'
        out.append((f'request rate, {fw} (wrk -c{j["settings"]["connections"]}, {j["settings"]["seconds"]} s)',
                    f'handler + `.bg()` vs + {base}',
                    f"{m['durable']['sustained']:,.0f} vs {m['baseline']['sustained']:,.0f} req/s sustained",
                    f"{r['sustained']:.3f}x sustained · {r['rps']:.3f}x wrk rate{note}"))
    if (p:=parts.get('peers')):
        if 'json' not in p: failed('durable no-op jobs', p)
        else:
            j = p['json']
            sys.path.insert(0, str(HERE))
            from peers import CASES, BASE
            base = j['results'].get(BASE, {}).get('jobs_s')
            for name,r in j['results'].items():
                label = f'{CASES[name][0]} ({CASES[name][1]})'
                bench = f"durable no-op jobs ({j['jobs']:,})"
                if 'jobs_s' not in r: out.append((bench, label, '—', r.get('skipped') or f"FAILED: {r.get('error')}")); continue
                out.append((bench, label, f"{r['jobs_s']:,.0f} jobs/s · {r['cpu_us_job']:,.0f} µs CPU/job · RSS MiB {fmt_rss(r['rss'])}",
                            f"{r['jobs_s']/base:.2f}x {CASES[BASE][0]}" if base else '—'))
    if (p:=parts.get('page_p99')):
        if 'json' not in p: failed('page p99', p)
        else:
            j = p['json']
            s,r = j['settings'],j['results']
            note = '' if r['checks_passed'] else ' · CHECKS FAILED'
            for k,label in (('idle', 'idle'), ('thread', f"{s['jobs']} def jobs in threads"),
                            ('process', f"{s['jobs']} def jobs, process=True"),
                            ('floor', 'no job, a busy loop per core at the pool\'s niceness (the floor)'),
                            ('nap', f"{s['jobs']} process=True jobs that sleep instead")):
                if k in r['p99_ms']:  # (no floor in a run before it was measured)
                    out.append((f"page p99 ({s['jobs']} jobs of {s['ms']:g} ms CPU)", label, f"{r['p99_ms'][k]:.1f} ms",
                                f"{r['vs_idle'][k]:.1f}x idle{note}"))
    if (p:=parts.get('workflows')):
        if 'json' not in p: failed('workflows', p)
        else:
            j = p['json']
            m = j['seconds']
            out.append(('durable workflows (4 workers)', f"{j['chains']} three-step chains",
                        f"{m['chains']:.3f} s against {m['plain_c']:.3f} s for {j['chains']} jobs",
                        f"{j['chain_per_job']:.2f}x per chain (goal 3.3x)"))
            out.append(('durable workflows (4 workers)', f"a group of {j['members']} with a fan-in",
                        f"{m['group']:.3f} s against {m['plain_g']:.3f} s for {j['members']} jobs",
                        f"{j['group_per_plain']:.2f}x (goal 1.1x)"))
    return out

def git(*a):
    try: return subprocess.run(['git', '--no-optional-locks', *a], cwd=HERE, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception: return ''

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--quick', action='store_true', help='1 round of each part')
    p.add_argument('--rounds', type=int, default=3, help='rounds of each part (ignored with --quick)')
    p.add_argument('--only', help='comma-separated parts: ' + ','.join(PARTS))
    p.add_argument('--out', default=str(HERE/'all_results.json'))
    a = p.parse_args()
    rounds = 1 if a.quick else a.rounds
    names = a.only.split(',') if a.only else list(PARTS)
    if bad:=[n for n in names if n not in PARTS]: p.error(f'unknown part(s) {bad}; known: {list(PARTS)}')
    start,t0,commit0 = datetime.now(timezone.utc),time.monotonic(),git('rev-parse', '--short', 'HEAD')
    tmp = Path(tempfile.mkdtemp(prefix='bgtasks-all-'))
    try: parts = {n: run_part(n, rounds, tmp) for n in names}
    finally: shutil.rmtree(tmp, ignore_errors=True)
    wall = time.monotonic()-t0
    machine = dict(cpus=os.cpu_count(), python=platform.python_version(), platform=platform.platform(),
                   bgtasks=version('bgtasks'), git_commit=commit0, git_commit_at_end=git('rev-parse', '--short', 'HEAD'),
                   bgtasks_dirty=bool(git('status', '--porcelain', '--', '../bgtasks')))
    head = (f"bgtasks benchmarks, {start:%Y-%m-%d %H:%M} UTC · {machine['cpus']} cores · Python {machine['python']} · "
            f"{machine['platform']} · bgtasks {machine['bgtasks']} @ {machine['git_commit']}"
            f"{'' if commit0==machine['git_commit_at_end'] else ' (HEAD moved to ' + machine['git_commit_at_end'] + ' during the run)'}"
            f"{' (bgtasks/ modified)' if machine['bgtasks_dirty'] else ''} · "
            f"{'--quick, 1 round' if a.quick else f'median of {rounds} rounds'} per part · total {wall/60:.1f} min")
    md = '\n'.join([head, '', '| benchmark | case | result | ratio |', '|---|---|---|---|',
                    *[f'| {" | ".join(r)} |' for r in rows(parts)], '',
                    'wall time per part: ' + ', '.join(f"{n} {p['wall_s']:.0f} s" for n,p in parts.items())])
    out = dict(date=start.isoformat(timespec='seconds'), machine=machine, quick=a.quick, rounds=rounds,
               wall_s=round(wall, 1), table=md, parts=parts)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(md)
    return 1 if any('error' in p for p in parts.values()) else 0

if __name__=='__main__': sys.exit(main())
