"""Every notebook under a real Jupyter kernel, as JupyterLab's "Run All" runs it.

nbdev's runner skips `#| eval: false` cells and cells flagged `#| cuda`; a reader who presses "Run All" does not.
Here nbclient runs every cell of every notebook in an ipykernel, two notebooks at a time, and a notebook fails if
a cell raises or if the run leaves a file behind in the repository: a new or changed file that `git status
--porcelain --untracked-files=all --ignored` shows once every run has ended, build output and caches aside. Files
the runs created are removed again afterwards, so that a second run starts from the same tree; changed tracked
files are only reported. The executed copies land in `_build/kernel/` for reading, and a run without an error
becomes the docs build's executed copy (`docs/build.py`'s `keep_run`), so that the suite runs each notebook once.
"""
import hashlib, os, re, subprocess, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest
from conftest import ROOT, docs_build

NOTEBOOKS = docs_build.all_notebooks()
key = lambda nb: str(docs_build.rel(nb))     # 'solutions/01_cell.ipynb': names repeat across folders
EXECUTED = ROOT/'_build'/'kernel'
CELL_TIMEOUT = 600                    # seconds a single cell may take
WORKERS = 2                           # notebooks run at the same time
_CACHE_DIRS = {'__pycache__', '.ipynb_checkpoints'}
# Build output and caches, and the virtual environment the README creates in the clone (tens of thousands of
# files to list for every snapshot): git is told not to look there at all.
_NOT_LOOKED_AT = ('_build', '_docs', '.pytest_cache', '.hypothesis', '.venv', 'venv')


def _entries() -> list[tuple[str, str]]:
    "(status, path) for every path `git status` reports: changed, untracked, ignored; build caches left out."
    r = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all', '--ignored', '-z', '--', '.']
                       + [f':(exclude){d}' for d in _NOT_LOOKED_AT], cwd=ROOT, capture_output=True, check=True)
    fields, out = r.stdout.decode('utf-8', 'surrogateescape').split('\0'), []
    i = 0
    while i < len(fields):
        f = fields[i]; i += 1
        if len(f) < 4: continue
        status, path = f[:2], f[3:]
        if status[0] in 'RC': i += 1                                 # a rename carries its old path next
        if _CACHE_DIRS & set(Path(path).parts): continue
        out.append((status, path))
    return out


def tree_state() -> dict:
    """{path: what it is now} for what `git status` reports: status and content hash of changed and untracked files,
    status, size and modification time of ignored ones (a virtual environment can live there: no hashing)."""
    state = {}
    for status, path in _entries():
        p = ROOT/path
        if not p.is_file() or p.is_symlink(): state[path] = (status,)
        elif status == '!!': s = p.stat(); state[path] = (status, s.st_size, s.st_mtime_ns)
        else: state[path] = (status, hashlib.sha256(p.read_bytes()).hexdigest())
    return state


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def run_notebook(nb: Path) -> str | None:
    "Execute every cell of `nb` in a fresh python3 kernel started in `nbs/`; None, or the error it raised."
    import nbformat
    from nbclient import NotebookClient
    book = nbformat.read(nb, as_version=4)
    client = NotebookClient(book, timeout=CELL_TIMEOUT, kernel_name='python3',
                            resources={'metadata': {'path': str(nb.parent)}})
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}     # JupyterLab's inline plots
    env.update(docs_build.ONE_THREAD)                                     # two notebooks at a time
    try: client.execute(env=env)
    except Exception as e: return re.sub(r'\x1b\[[0-9;]*m', '', f'{type(e).__name__}: {e}')[-6000:]   # no colours
    else:
        docs_build.keep_run(nb, book)          # the docs build shows this run instead of running it again
        return None
    finally:
        (EXECUTED/docs_build.rel(nb)).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(book, EXECUTED/docs_build.rel(nb))


def left_behind(during: list[str], start: dict, end: dict) -> list[str]:
    """Of the paths that changed while a notebook ran (`during`), those still changed once every run has ended.
    Every chapter ends with `nbdev_export()`, which rewrites `rnnlit/` with what is already there: two notebooks
    that export at the same moment can each catch the other's half-written file. That is not a file left behind;
    a file that is still new or different at the end is."""
    still = set(changed(start, end))
    return [f for f in during if f in still]


def _remove_new_files(start: dict, end: dict):
    "Delete the untracked or ignored files that the runs created (absent at `start`), and folders left empty."
    for path in changed(start, end):
        if path in start or end.get(path, ('',))[0] not in ('??', '!!'): continue
        p = ROOT/path
        if p.is_file() or p.is_symlink(): p.unlink()
        for d in p.parents:
            if d == ROOT or any(d.iterdir()): break
            d.rmdir()


@pytest.fixture(scope='module')
def kernel_runs(request) -> dict:
    "{notebook name: (error or None, files left behind, notebooks that ran alongside, seconds)} for the selected ones."
    selected = {key(it.callspec.params['nb']) for it in request.session.items
                if getattr(it, 'originalname', '') == 'test_notebook_under_a_real_kernel'}
    nbs = [nb for nb in NOTEBOOKS if key(nb) in selected]
    lock, running, out = threading.Lock(), set(), {}
    start = tree_state()
    def one(nb):
        with lock: before = tree_state(); running.add(key(nb)); seen = set(running)
        t = time.time()
        err = run_notebook(nb)
        with lock:
            after = tree_state(); running.discard(key(nb)); seen |= running
            out[key(nb)] = (err, changed(before, after), sorted(seen - {key(nb)}), time.time() - t)
    t = time.time()
    try:
        with ThreadPoolExecutor(WORKERS) as ex: list(ex.map(one, nbs))
    finally:
        end = tree_state()
        _remove_new_files(start, end)
    out = {k: (err, left_behind(during, start, end), seen, s) for k, (err, during, seen, s) in out.items()}
    print(f'\n{len(nbs)} notebooks under a real kernel in {time.time() - t:.0f}s, {WORKERS} at a time: '
          + ', '.join(f'{k} {v[3]:.0f}s' for k, v in out.items()))
    return out


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[key(p) for p in NOTEBOOKS])
def test_notebook_under_a_real_kernel(kernel_runs, nb):
    err, left, alongside, seconds = kernel_runs[key(nb)]
    assert err is None, f'{key(nb)} raised under a real kernel ("Run All"):\n{err}'
    # Two notebooks run at once: a file that appeared while another one ran may be the other one's.
    shared = {f: [k for k in alongside if f in kernel_runs.get(k, (None, []))[1]] for f in left}
    said = [f + (f' (or {" / ".join(o)}, which ran alongside, wrote it)' if o else '') for f, o in shared.items()]
    assert not left, f'{key(nb)} left files behind in the repository: {", ".join(said)}'


def test_tree_state_sees_new_changed_and_ignored_files(tmp_path):
    "The check can fail: a new untracked file, a changed one, and a new file in an ignored folder are all seen."
    before = tree_state()
    new, ignored = ROOT/'nbs'/'_kernel_check.txt', ROOT/'rnnlit-run'/'_kernel_check.txt'
    made_dir = not ignored.parent.exists()
    try:
        new.write_text('x'); ignored.parent.mkdir(exist_ok=True); ignored.write_text('x')
        mid = tree_state()
        new.write_text('y')
        after = tree_state()
    finally:
        new.unlink(missing_ok=True); ignored.unlink(missing_ok=True)
        if made_dir: ignored.parent.rmdir()
    assert {'nbs/_kernel_check.txt', 'rnnlit-run/_kernel_check.txt'} <= set(changed(before, mid))
    assert changed(mid, after) == ['nbs/_kernel_check.txt']
    assert changed(before, tree_state()) == []


def test_left_behind_ignores_only_what_was_undone():
    "A file rewritten with the same content while a notebook ran is not left behind; a new or changed one is."
    start = {'a.txt': ('??', 'h1')}
    during = ['a.txt', 'rnnlit/_modidx.py', 'new.txt']               # all three changed during the run
    end = {'a.txt': ('??', 'h2'), 'new.txt': ('??', 'h3')}           # _modidx.py is back as it was
    assert left_behind(during, start, end) == ['a.txt', 'new.txt']
    assert left_behind(during, start, start) == []
