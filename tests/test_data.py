"""Chapter 5: the shipped data and the recipe that made the corpus, in a fresh interpreter and in a real
Jupyter kernel."""
import hashlib, json, platform, subprocess, sys
from importlib.resources import files
from pathlib import Path
import numpy as np
import pytest
from rnnlit.data import _CORPUS_PYTHON, _CORPUS_SHA256, batchify

NB = Path(__file__).parents[1]/'nbs'/'05_data.ipynb'
SHIPPED = files('rnnlit').joinpath('data', 'corpus.txt').read_bytes()
same_python = pytest.mark.skipif(platform.python_version() != _CORPUS_PYTHON,
                                 reason=f'the recipe reproduces corpus.txt with Python {_CORPUS_PYTHON}')


def cell(cell_id):
    "The source of one cell of chapter 5."
    return next(''.join(c['source']) for c in json.loads(NB.read_text())['cells'] if c['id'] == cell_id)


RECIPE, RUN_RECIPE = cell('d1c124d7'), cell('e0c0a003')


def test_the_recorded_hash_is_the_shipped_corpus():
    assert hashlib.sha256(SHIPPED).hexdigest() == _CORPUS_SHA256


@same_python
def test_the_recipe_reproduces_the_shipped_corpus_in_a_fresh_interpreter(tmp_path):
    out = tmp_path/'corpus.txt'
    script = RECIPE + f"\nopen({str(out)!r}, 'w').write(stdlib_corpus())\n"
    subprocess.run([sys.executable, '-c', script], check=True, cwd=tmp_path)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == _CORPUS_SHA256


@same_python
def test_in_a_kernel_the_recipe_differs_and_its_cell_runs_it_outside(tmp_path):
    "The chapter's claims: a kernel patches getpass and pdb, so the recipe must run in a fresh process."
    nbformat = pytest.importorskip('nbformat')
    nbclient = pytest.importorskip('nbclient')
    repo = Path(__file__).parents[1]
    tree = lambda: {p for p in repo.rglob('*') if not {'.git', '__pycache__'} & set(p.parts)}
    before = tree()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in [
        f"import hashlib, os, getpass, pdb, sys\nos.environ['RNNLIT_CORPUS_DIR'] = {str(tmp_path)!r}\n"
        f"sys.path.insert(0, {str(repo)!r})\nfrom rnnlit.data import _CORPUS_SHA256\n"
        "print(getpass.getpass.__module__, pdb.Pdb.__module__)",
        RECIPE,
        "print(hashlib.sha256(stdlib_corpus().encode()).hexdigest())",       # inside the kernel
        RUN_RECIPE]]
    nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': str(tmp_path)}}).execute()
    out = [''.join(o.get('text', '') for o in c.outputs) for c in nb.cells]
    assert out[0].split() != ['getpass', 'pdb']                        # the kernel replaced both
    assert out[2].strip() != _CORPUS_SHA256                             # so in-process gives another file
    assert 'the shipped corpus.txt byte for byte' in out[3], out[3]     # the cell's fresh interpreter
    assert hashlib.sha256((tmp_path/'corpus.txt').read_bytes()).hexdigest() == _CORPUS_SHA256
    assert tree() == before                                             # nothing in the tree


def test_batchify_checks_B_with_the_shared_positive_int_check():
    with pytest.raises(ValueError, match='`B`'): batchify(np.arange(10), 0)
    with pytest.raises(TypeError, match='`B`'): batchify(np.arange(10), True)
    with pytest.raises(TypeError, match='`B`'): batchify(np.arange(10), 2.0)
