"""Check the built docs in a real browser: serve `_docs/` on 127.0.0.1, load every page with headless Chromium,
and fail when a lesson page (one per nbs/[0-9]*.ipynb) shows no code cells or no output, or when an internal
link (a page or an #anchor of this site) or a local resource is broken.

Usage, from the repo root, after tools/docs_preview.sh (or nbdev-docs): python tools/check_docs.py [DOCS_DIR]
Chromium: $CHROMIUM, else `chromium` on PATH, else /usr/bin/chromium."""

import functools, http.server, os, shutil, sys, threading, time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

from nbdev.config import get_config, nbpath2html
from playwright.sync_api import sync_playwright

CHROME_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
               '--disable-component-update', '--disable-sync', '--no-first-run']
# Code cells and outputs, as both Quarto and smalldocs mark them up
CODE, OUTPUT = '.cell .cell-code', '.cell .cell-output'
# Every id on the page, and the old-style <a name=...> anchors
IDS_JS = "() => [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(e => e.name))"
LINKS_JS = "() => [...document.querySelectorAll('a[href]')].map(a => a.href)"
CELLS_JS = f"""() => ({{
  code: [...document.querySelectorAll('{CODE}')].filter(e => e.innerText.trim()).length,
  output: [...document.querySelectorAll('{OUTPUT}')].filter(e => e.innerText.trim() || e.querySelector('img,svg,canvas,iframe,table')).length}})"""


def serve(root: Path):
    "Serve `root` on a free port of 127.0.0.1 in a daemon thread; return the server and its base URL."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}/'


def shown_code_cells(nb: Path) -> int:
    "How many code cells of a processed notebook should show their code (Quarto's echo/include options applied)."
    from fastcore.nbio import read_nb
    n = 0
    for c in read_nb(nb).cells:
        if c.cell_type != 'code': continue
        lines = c.source.splitlines()
        opts = [l.replace(' ', '') for l in lines if l.lstrip().startswith('#|')]
        if '#|echo:false' in opts or '#|include:false' in opts: continue
        if any(l.strip() and not l.lstrip().startswith('#|') for l in lines): n += 1
    return n


def lessons(cfg, docs: Path) -> dict:
    "Map each lesson page (smalldocs keeps the notebook's name, Quarto uses nbdev's output-file) to its notebook."
    res = {}
    for nb in sorted(cfg.nbs_path.glob('[0-9]*.ipynb')):
        cands = [nb.with_suffix('.html').name, nbpath2html(nb).name]
        res[next((c for c in cands if (docs/c).exists()), cands[0])] = nb
    return res


def main(docs='_docs'):
    t0 = time.time()
    cfg = get_config()
    docs = Path(docs).resolve()
    pages = sorted(p.relative_to(docs).as_posix() for p in docs.rglob('*.html') if 'site_libs' not in p.parts)
    if not pages: sys.exit(f'no pages in {docs}: build the docs first (tools/docs_preview.sh)')
    want = lessons(cfg, docs)
    problems, warnings, ids, links = [], [], {}, []
    if 'index.html' not in pages: problems.append('index.html: missing home page (nbs/index.ipynb)')
    for page in want:
        if page not in pages: problems.append(f'{page}: missing lesson page for nbs/{want[page].name}')
    srv, base = serve(docs)
    exe = os.environ.get('CHROMIUM') or shutil.which('chromium') or '/usr/bin/chromium'
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=CHROME_ARGS)
        ctx = browser.new_context()
        # offline: never wait on the network for anything but this site
        ctx.route('**/*', lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
        tab = ctx.new_page()
        bad = []
        tab.on('response', lambda r: r.url.startswith(base) and r.status >= 400 and bad.append(f'{r.status} {r.url[len(base):]}'))
        tab.on('pageerror', lambda e: warnings.append(f'{cur}: JavaScript error: {e}'))
        for cur in pages:
            bad.clear()
            resp = tab.goto(base + cur, wait_until='load')
            if not resp or resp.status >= 400:
                problems.append(f'{cur}: HTTP {resp and resp.status}'); continue
            problems += [f'{cur}: broken resource {b}' for b in bad]
            ids[cur] = set(tab.evaluate(IDS_JS))
            links += [(cur, h) for h in tab.evaluate(LINKS_JS)]
            if cur in want:
                n = tab.evaluate(CELLS_JS)
                proc = cfg.config_path/'_proc'/want[cur].name
                exp = shown_code_cells(proc) if proc.exists() else 1
                if n['code'] < max(exp, 1): problems.append(f"{cur}: {n['code']} code cell(s) rendered, expected {max(exp, 1)}")
                if n['output'] < 1: problems.append(f'{cur}: no cell output rendered')
                print(f"lesson {cur}: {n['code']} code cells, {n['output']} outputs")
        # internal links: the target must exist, and so must its anchor
        status, checked = {}, 0
        for cur, href in links:
            if not href.startswith(base): continue
            url, frag = urldefrag(href)
            target = unquote(urlsplit(url).path)[1:]
            if target == '' or target.endswith('/'): target += 'index.html'
            checked += 1
            if target not in ids and target not in status:
                r = ctx.request.get(base + target)
                status[target] = r.status
                if r.ok and 'html' in r.headers.get('content-type', ''):
                    tab.goto(base + target, wait_until='load')
                    ids[target] = set(tab.evaluate(IDS_JS))
            if target not in ids and status.get(target, 200) >= 400:
                problems.append(f'{cur}: broken link {href[len(base):] or "./"} ({status[target]})')
            elif frag and target in ids and unquote(frag) not in ids[target]:
                problems.append(f'{cur}: broken anchor {href[len(base):]}')
        browser.close()
    srv.shutdown()
    for w in dict.fromkeys(warnings): print('warning:', w)
    for p in dict.fromkeys(problems): print('PROBLEM:', p)
    print(f'check_docs: {len(pages)} pages, {len(want)} lessons, {checked} internal links, '
          f'{len(set(problems))} problem(s), {time.time()-t0:.1f}s')
    return 1 if problems else 0


if __name__ == '__main__': sys.exit(main(*sys.argv[1:2]))
