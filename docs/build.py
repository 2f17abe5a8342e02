"""Build rnnlit's documentation site and README from the notebooks, without Quarto.

The pipeline, one function a stage:

1. `execute`: run each notebook in `nbs/` with nbdev's own test runner (`nbdev.test.test_nb`: the same cells
   `nbdev_test` runs, the same flags skipped) and keep the executed copy in `_build/exec/`. Copies are reused
   while neither the notebook nor the package has changed. The test suite runs every notebook under a
   Jupyter kernel anyway and hands its runs over with `keep_run`, so that a notebook runs once per suite.
2. `process`: nbdev's docs processing (`nbdev.processors.FilterDefaults`: front matter, `show_doc` entries for
   every exported symbol, hidden cells removed) on the executed copies, into `_build/proc/`.
3. `to_myst`: the thin adapter from nbdev's Quarto-flavoured cells to myst-nb: front matter becomes a title,
   `#| echo/output/include` directives become myst-nb tags, `output: asis` outputs (the API entries) become
   markdown cells, Quarto callouts become MyST admonitions.
4. `sphinx`: Sphinx + myst-nb + sphinx-book-theme render `_build/site/` into `_docs/`, with MathJax served
   from the site itself.

`make_readme` turns `nbs/index.ipynb` into `README.md` with its saved outputs.

Usage: `python docs/build.py` (the site), `python docs/build.py --readme` (README.md only).
"""
from __future__ import annotations
import argparse, hashlib, json, os, re, shutil, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, BUILD, OUT = ROOT/'nbs', ROOT/'_build', ROOT/'_docs'


# The notebooks run two at a time on two cores: one BLAS and OpenMP thread each, or the libraries' spinning
# worker threads fight over the cores and a notebook runs many times slower.
ONE_THREAD = {k: '1' for k in ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')}


def notebooks() -> list[Path]:
    "The book's notebooks: `nbs/*.ipynb` not starting with `_` or `.`, in sidebar order."
    return sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))


def solutions() -> list[Path]:
    "The worked solutions of the exercises, `nbs/solutions/*.ipynb`: the site's last part, in chapter order."
    return sorted(p for p in (NBS/'solutions').glob('*.ipynb') if not p.name.startswith(('_', '.')))


def all_notebooks() -> list[Path]:
    "Every notebook the tests run and the site shows: the book, then the solutions."
    return notebooks() + solutions()


def rel(nb: Path) -> Path:
    "`nb`'s path inside `nbs/` (`01_cell.ipynb`, `solutions/01_cell.ipynb`): its name in every build folder."
    return nb.resolve().relative_to(NBS)


# --- 1. execute -------------------------------------------------------------------------------------------
def _fingerprint(nb: Path) -> str:
    "A hash of the notebook and of every file the package is built from: a changed hash means run it again."
    h = hashlib.sha256(nb.read_bytes())
    for p in sorted((ROOT/'rnnlit').rglob('*')):
        if p.is_file() and p.suffix in ('.py', '.txt', '.json', '.npz'): h.update(p.name.encode()); h.update(p.read_bytes())
    return h.hexdigest()


def execute_one(nb: Path, dest: Path, flags: str = '') -> tuple[bool, float, str]:
    "Run `nb` with nbdev's test runner in a fresh process; write the executed copy to `dest`. Returns (ok, seconds, error)."
    dest.parent.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, str(Path(__file__)), '--exec-one', str(nb), str(dest)] + (['--flags', flags] if flags else [])
    t = time.time()
    r = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ONE_THREAD})
    return r.returncode == 0, time.time() - t, (r.stderr + r.stdout)[-20000:]


def _exec_one_inprocess(nb: Path, dest: Path, flags: str = ''):
    "Worker for `execute_one`: nbdev's `test_nb`, with its shell keeping the executed notebook."
    import nbdev.test
    from execnb.nbio import write_nb
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    kept = {}
    class _KeepShell(CaptureShell):
        def run_all(self, nb, *args, **kwargs):
            kept['nb'] = nb
            return super().run_all(nb, *args, **kwargs)
    nbdev.test.CaptureShell = _KeepShell
    skip = get_config().get('tst_flags', '').split()
    os.environ.setdefault('MPLBACKEND', 'Agg')
    ok, _ = nbdev.test.test_nb(nb, skip_flags=skip, force_flags=flags.split(), showerr=True, basepath=ROOT)
    ran = kept.get('nb')
    if ran is not None:   # `test_nb` stripped the `#|` directives it parsed: put its outputs on the original cells
        from execnb.nbio import read_nb
        out = read_nb(nb)
        for orig, done in zip([c for c in out.cells if c.cell_type == 'code'], [c for c in ran.cells if c.cell_type == 'code']):
            orig['outputs'], orig['execution_count'] = done.get('outputs', []), done.get('execution_count')
        if ok: out.metadata['rnnlit_fingerprint'] = _fingerprint(nb)    # a failed run is never reused
        write_nb(out, dest)
    return ok


def _tst_flags() -> set:
    "The flags of settings.ini's `tst_flags`: cells carrying one are skipped by nbdev's runner (`cuda`)."
    from configparser import ConfigParser
    c = ConfigParser(delimiters=['=']); c.read(ROOT/'settings.ini', encoding='utf-8')
    return set(c['DEFAULT'].get('tst_flags', '').split())


def nbdev_skips(source: str, flags: set) -> bool:
    "Whether nbdev's runner leaves a code cell out: it calls `nbdev_export(`, says `#| eval: false`, or has a flag."
    d, _ = split_directives(source)
    return 'nbdev_export(' in source or d.get('eval', '').lower() == 'false' or bool(flags & d.keys())


def keep_run(nb: Path, ran: dict, dest: Path | None = None):
    """Keep `ran`, `nb` executed elsewhere without an error (the tests' Jupyter kernel), as the executed copy that
    `execute` would write: its outputs, except in the cells nbdev's runner leaves out, which keep the outputs
    saved in `nb` (a `#| cuda` cell's GPU results, not this machine's "no GPU")."""
    dest = BUILD/'exec'/rel(nb) if dest is None else dest
    out, flags = json.loads(nb.read_text()), _tst_flags()
    code = lambda book: [c for c in book['cells'] if c['cell_type'] == 'code']
    for orig, done in zip(code(out), code(ran), strict=True):
        if not nbdev_skips(''.join(orig['source']), flags):
            orig['outputs'], orig['execution_count'] = done.get('outputs', []), done.get('execution_count')
    out.setdefault('metadata', {})['rnnlit_fingerprint'] = _fingerprint(nb)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1, ensure_ascii=False) + '\n')


def execute(nbs: list[Path] | None = None, dest: Path = BUILD/'exec', workers: int = 2) -> dict:
    "Execute `nbs` (default: all) into `dest`, reusing fresh copies. Returns {path in nbs/: (ok, seconds, error)}."
    nbs = all_notebooks() if nbs is None else nbs
    def run(nb):
        d = dest/rel(nb)
        if d.exists() and json.loads(d.read_text()).get('metadata', {}).get('rnnlit_fingerprint') == _fingerprint(nb):
            return str(rel(nb)), (True, 0.0, '')
        return str(rel(nb)), execute_one(nb, d)
    with ThreadPoolExecutor(workers) as ex: return dict(ex.map(run, nbs))


# --- 2. process -------------------------------------------------------------------------------------------
def process(src: Path = BUILD/'exec', dest: Path = BUILD/'proc'):
    "nbdev's docs processing of every executed notebook in `src`, written to `dest` (one fresh process each)."
    if dest.exists(): shutil.rmtree(dest)
    dest.mkdir(parents=True)
    code = ("import sys; from pathlib import Path; import nbdev.serve_drv as d; from nbdev.processors import FilterDefaults;"
            "d.main((Path(sys.argv[1]), Path(sys.argv[2]), FilterDefaults))")
    def run(nb):
        out = dest/nb.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run([sys.executable, '-c', code, str(nb), str(out)], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, 'MPLBACKEND': 'Agg'})
        if r.returncode: raise RuntimeError(f"nbdev processing failed for {nb.name}:\n{r.stderr[-5000:]}")
    with ThreadPoolExecutor(2) as ex: list(ex.map(run, sorted(src.rglob('*.ipynb'))))


# --- 3. the adapter: nbdev/Quarto cells -> myst-nb ---------------------------------------------------------
_re_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')
_callouts = {'note': 'note', 'tip': 'tip', 'warning': 'warning', 'important': 'important', 'caution': 'caution'}
_re_callout = re.compile(r'^:::\s*\{\.callout-(\w+)([^}]*)\}\s*$', re.MULTILINE)


def split_directives(source: str) -> tuple[dict, str]:
    "Split leading `#| key: value` lines off `source`: ({key: value}, rest)."
    lines, d = source.splitlines(), {}
    while lines and (m := _re_directive.match(lines[0])):
        d[m.group(1)] = m.group(2).strip('"\'')
        lines.pop(0)
    return d, '\n'.join(lines)


def _md_cell(text): return {'cell_type': 'markdown', 'metadata': {}, 'source': text}


def _output_markdown(o) -> str:
    "The text of an output shown `asis`: markdown if it has it, else its plain text."
    if o.get('output_type') == 'stream': return ''.join(o.get('text', ''))
    data = o.get('data', {})
    for k in ('text/markdown', 'text/plain'):
        if k in data: return ''.join(data[k])
    return ''


def callouts(md: str) -> str:
    "Quarto callouts (`::: {.callout-note}` ... `:::`) as MyST admonitions (`:::{note}` ... `:::`)."
    return _re_callout.sub(lambda m: ':::{' + _callouts.get(m.group(1), 'note') + '}', md)


def frontmatter(source: str) -> dict:
    "The YAML front matter of a raw cell (`---` ... `---`), or {} if it has none."
    import yaml
    body = source.strip()
    if not (body.startswith('---') and body.endswith('---')): return {}
    d = yaml.safe_load(body.strip('-'))
    return d if isinstance(d, dict) else {}


def _doc_url() -> str:
    "Where nbdev believes the docs live (settings.ini's doc_host + doc_baseurl): its links start with this."
    from configparser import ConfigParser
    c = ConfigParser(delimiters=['=']); c.read(ROOT/'settings.ini', encoding='utf-8')
    return c['DEFAULT']['doc_host'].rstrip('/') + '/' + c['DEFAULT']['doc_baseurl'].strip('/') + '/'


def module_pages(nbs: list[Path] | None = None) -> dict:
    "{module name: page name} from each notebook's `#| default_exp`, e.g. {'cell': '01_cell'}."
    out = {}
    for p in notebooks() if nbs is None else nbs:
        for c in json.loads(p.read_text())['cells']:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', ''.join(c['source']), re.MULTILINE)
            if c['cell_type'] == 'code' and m: out[m.group(1)] = p.stem; break
    return out


def slug(heading: str) -> str:
    "The id myst gives a heading (GitHub style): `### Trainer.fit` -> `trainerfit`."
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def anchors_of(nb: dict) -> set:
    "The ids of every heading in a myst-ready notebook's markdown cells."
    return {slug(m.group(1)) for c in nb['cells'] if c['cell_type'] == 'markdown'
            for m in re.finditer(r'^#{1,6}\s+(.+?)\s*$', ''.join(c['source']), re.MULTILINE)}


def local_links(md: str, pages: dict, base: str, prefix: str = '', anchors: dict | None = None) -> str:
    """nbdev's links to its own docs site, made links between our pages (`cell.html#rnn` -> `01_cell.ipynb#rnn`,
    after `prefix`, e.g. `../` from a page one folder down); in code, plain names. Given `anchors` ({page: ids}),
    a link to a method without an entry of its own points at its class's entry, or at the page."""
    link = re.compile(r'\[(`[^`\]]+`)\]\(' + re.escape(base) + r'([\w.]+)\.html(?:#([^)\s]*))?\)')
    def fix(m):
        if any(part.startswith('_') for part in m.group(1).strip('`').split('.')):
            return m.group(1)            # a private helper has no API entry to link to: just the name
        page = pages.get(m.group(2), m.group(2))
        anchor = re.sub(r'[^\w-]', '', (m.group(3) or '').lower())     # the heading ids myst makes (GitHub style)
        if anchors is not None and anchor not in anchors.get(page, ()):
            cls = slug(m.group(1).strip('`').split('.')[0])
            anchor = cls if cls in anchors.get(page, ()) else ''
        return f"[{m.group(1)}]({prefix}{page}.ipynb{'#' + anchor if anchor else ''})"      # myst resolves and checks it
    parts = re.split(r'(^```.*?^```)', md, flags=re.MULTILINE | re.DOTALL)          # odd parts are fenced code
    return ''.join(link.sub(r'\1', p) if i % 2 else link.sub(fix, p) for i, p in enumerate(parts))


def to_myst(nb: dict, pages: dict | None = None, base: str = '', prefix: str = '',
            anchors: dict | None = None) -> dict:
    "Map one nbdev-processed notebook (a dict) onto myst-nb's conventions; returns a new notebook dict."
    pages = {} if pages is None else pages
    def markdown(text): return _md_cell(local_links(text, pages, base, prefix, anchors) if base else text)
    cells = []
    for c in nb['cells']:
        src = ''.join(c.get('source', ''))
        if c['cell_type'] == 'raw':
            fm = frontmatter(src)
            if 'title' in fm:
                text = f"# {fm['title']}"
                if fm.get('description'): text += f"\n\n{{.lead}}\n{fm['description']}"
                cells.append(markdown(text))
            continue
        if c['cell_type'] == 'markdown':
            cells.append(markdown(callouts(src)))
            continue
        d, code = split_directives(src)
        if d.get('include') == 'false' or (not code.strip() and not c.get('outputs')): continue
        if d.get('output') == 'asis':   # show_doc entries and the like: their output *is* markdown
            text = '\n'.join(_texts(c.get('outputs', [])))   # a kernel may send one print in pieces
            if d.get('echo') != 'false' and code.strip(): cells.append({**c, 'source': code, 'outputs': []})
            if text.strip(): cells.append(markdown(callouts(text)))
            continue
        tags = []
        if d.get('echo') == 'false': tags.append('remove-input')
        if d.get('output') == 'false': tags.append('remove-output')
        if d.get('code-fold') == 'true': tags.append('hide-input')     # 'show' (nbdev's exported code): open
        meta = {k: v for k, v in c.get('metadata', {}).items() if k != 'tags'}
        if tags: meta['tags'] = tags
        cells.append({**c, 'source': code, 'metadata': meta})
    return {**nb, 'cells': cells}


def title_of(nb: dict) -> str:
    "The first H1 of a myst-ready notebook."
    for c in nb['cells']:
        if c['cell_type'] == 'markdown' and (m := re.match(r'#\s+(.+)', ''.join(c['source']))): return m.group(1).strip()
    return ''


def adapt(src: Path = BUILD/'proc', dest: Path = BUILD/'site'):
    "Write myst-nb-ready notebooks for every processed notebook, the home page last linking to the rest in order."
    if dest.exists(): shutil.rmtree(dest)
    dest.mkdir(parents=True)
    pages = [p for p in sorted(src.glob('*.ipynb')) if p.name != 'index.ipynb']
    sols = sorted((src/'solutions').glob('*.ipynb'))
    anchors = {p.stem: anchors_of(to_myst(json.loads(p.read_text()))) for p in pages}   # before any link
    kw = dict(pages=module_pages(), base=_doc_url(), anchors=anchors)
    for p in pages: (dest/p.name).write_text(json.dumps(to_myst(json.loads(p.read_text()), **kw), indent=1))
    if sols: (dest/'solutions').mkdir()
    for p in sols:            # one folder down: links to the chapters' pages go up one level
        nb = to_myst(json.loads(p.read_text()), **kw, prefix='../')
        (dest/'solutions'/p.name).write_text(json.dumps(nb, indent=1))
    index = to_myst(json.loads((src/'index.ipynb').read_text()), **kw)
    toc = '\n'.join(p.stem for p in pages)
    index['cells'].append(_md_cell(f"```{{toctree}}\n:hidden:\n:caption: Chapters\n:maxdepth: 1\n\n{toc}\n```"))
    if sols:
        toc = '\n'.join(f'solutions/{p.stem}' for p in sols)
        index['cells'].append(_md_cell(f"```{{toctree}}\n:hidden:\n:caption: Solutions\n:maxdepth: 1\n\n{toc}\n```"))
    (dest/'index.ipynb').write_text(json.dumps(index, indent=1))


# --- 4. sphinx --------------------------------------------------------------------------------------------
def sphinx(src: Path = BUILD/'site', out: Path = OUT):
    "Render `src` into the HTML site `out` with the configuration in `docs/conf.py`; warnings are errors."
    html = BUILD/'html'       # myst-nb writes its `jupyter_execute/` beside the output folder: keep it in _build/
    for d in (html, out): shutil.rmtree(d, ignore_errors=True)
    r = subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-W', '--keep-going', '-q', '-c', str(ROOT/'docs'),
                        '-d', str(BUILD/'doctrees'), str(src), str(html)], capture_output=True, text=True, cwd=ROOT)
    if r.returncode: raise RuntimeError(f"sphinx-build failed:\n{r.stderr[-8000:]}{r.stdout[-2000:]}")
    shutil.copytree(html, out)
    (out/'.nojekyll').touch()


def build(workers: int = 2) -> Path:
    "The whole site: execute (reusing fresh copies), process, adapt, render. Returns the site's folder."
    res = execute(workers=workers)
    failed = {k: v[2] for k, v in res.items() if not v[0]}
    if failed: raise RuntimeError('notebooks failed:\n' + '\n\n'.join(f'{k}:\n{v}' for k, v in failed.items()))
    process(); adapt(); sphinx()
    return OUT


# --- README -----------------------------------------------------------------------------------------------
def _texts(outputs: list) -> list[str]:
    "The text of each output, consecutive pieces of one stream joined (a kernel may send a print in pieces)."
    texts, last = [], None
    for o in outputs:
        stream = o.get('name') if o.get('output_type') == 'stream' else None
        if stream and stream == last: texts[-1] += _output_markdown(o)
        else: texts.append(_output_markdown(o))
        last = stream
    return texts


def make_readme(nb_path: Path = NBS/'index.ipynb') -> str:
    """GitHub markdown for `nb_path` with its saved outputs: the README. Hidden and exported cells are left out;
    the output of an `output: asis` cell is markdown and is written as it is."""
    nb = json.loads(nb_path.read_text())
    parts = [f"<!-- Generated from nbs/{nb_path.name} by `python docs/build.py --readme`; edit the notebook, not this file. -->"]
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if c['cell_type'] == 'markdown': parts.append(src); continue
        if c['cell_type'] != 'code': continue
        d, code = split_directives(src)
        if {'hide', 'export', 'exporti', 'default_exp'} & set(d) or d.get('include') == 'false': continue
        if d.get('echo') != 'false' and code.strip(): parts.append(f"```python\n{code.strip()}\n```")
        if d.get('output') == 'false': continue
        for text in map(str.rstrip, _texts(c.get('outputs', []))):
            if text: parts.append(text if d.get('output') == 'asis' else f"```\n{text}\n```")
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description="Build rnnlit's docs site (into _docs/) or its README.")
    ap.add_argument('--readme', action='store_true', help='only write README.md from nbs/index.ipynb')
    ap.add_argument('--exec-one', nargs=2, metavar=('NOTEBOOK', 'DEST'), help=argparse.SUPPRESS)
    ap.add_argument('--flags', default='', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.exec_one: sys.exit(0 if _exec_one_inprocess(Path(a.exec_one[0]), Path(a.exec_one[1]), a.flags) else 1)
    if a.readme:
        (ROOT/'README.md').write_text(make_readme())
        print('wrote README.md')
    else:
        t = time.time()
        print(f"built {build()/'index.html'} in {time.time() - t:.0f}s")
