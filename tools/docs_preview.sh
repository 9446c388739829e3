#!/usr/bin/env bash
# Offline docs preview, without Quarto. The real site is still built by `nbdev-docs` (deploy workflow).
#   1. nbdev processes the notebooks exactly as `nbdev-docs` does before it calls Quarto
#      (refresh _quarto.yml/nbdev.yml, _modidx.py, sidebar.yml, processed notebooks into _proc/);
#   2. smalldocs renders _proc/ (it reads _quarto.yml + nbdev.yml + sidebar.yml) and the site is moved to _docs/,
#      as nbdev-docs moves Quarto's output;
#   3. README.md is made from the processed readme notebook (nbs/index.ipynb) with nbconvert, the way
#      `nbdev-readme` does it with Quarto (title, code cells, outputs; hidden cells and cell options respected).
# Run from the repo root: tools/docs_preview.sh   (then: python tools/check_docs.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

echo "== nbdev: process notebooks into _proc/ (nbdev-docs' _pre_docs, minus its Quarto install)"
# _pre_docs() would download and install Quarto when it is missing; that is its only non-offline step.
"$PY" -c 'import nbdev.quarto as q; q._ensure_quarto = lambda: None; q._pre_docs()'

echo "== smalldocs: render _proc/ -> _docs/"
rm -rf _proc/_docs
smalldocs render _proc --quiet
rm -rf _docs
mv _proc/_docs _docs

echo "== README.md from the processed readme notebook"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$tmp/README.ipynb" <<'EOF'
# Turn what Quarto would do with the processed notebook into plain notebook cells for nbconvert:
# title from the front matter, `#|` cell options (echo/output/include) applied and stripped,
# relative doc links made absolute, as nbdev's readme_filter does.
import re, sys, yaml, nbformat
from pathlib import Path
from nbdev.config import get_config
from nbdev.readme_filter import doc_link
cfg = get_config()
src = cfg.config_path/'_proc'/cfg.readme_nb
if not src.exists(): sys.exit(print(f'{src} not found'))
nb, cells = nbformat.read(src, as_version=4), []
nbdir = Path(cfg.readme_nb).parent.as_posix()
for c in nb.cells:
    if c.cell_type == 'raw':
        fm = yaml.safe_load(c.source.strip().strip('-')) or {}
        if fm.get('title'): cells.append(nbformat.v4.new_markdown_cell(f"# {fm['title']}"))
        continue
    if c.cell_type == 'markdown' and cfg.doc_host:
        c.source = re.sub(r'(\]\()([^)\s]+)', lambda m: m[1] + doc_link(m[2], cfg.doc_url, nbdir), c.source)
    if c.cell_type == 'code':
        lines, opts = c.source.splitlines(), {}
        while lines and lines[0].lstrip().startswith('#|'):
            k, _, v = lines.pop(0).lstrip()[2:].partition(':')
            opts[k.strip()] = v.strip().lower()
        if opts.get('include') == 'false': continue
        c.source = '\n'.join(lines)
        if opts.get('echo') == 'false' or not c.source.strip(): c.metadata['transient'] = {'remove_source': True}
        if opts.get('output') == 'false': c.outputs = []
        if not c.source.strip() and not c.outputs: continue
    cells.append(c)
nb.cells = cells
nb.metadata['language_info'] = {'name': nb.metadata.get('kernelspec', {}).get('language', 'python')}  # code fence language
nbformat.write(nb, sys.argv[1])
EOF
if [ -f "$tmp/README.ipynb" ]; then
  rm -rf README_files
  jupyter nbconvert --to markdown --output-dir . --log-level WARN "$tmp/README.ipynb"
  echo "wrote README.md"
else
  echo "README.md left as is"
fi

echo "== done: open _docs/index.html, or check it with: $PY tools/check_docs.py"
