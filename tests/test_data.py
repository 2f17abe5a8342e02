"""Chapter 5: the shipped data and the recipe that made the corpus, in a fresh interpreter and in a real
Jupyter kernel."""
import hashlib, json, platform, subprocess, sys
from importlib.resources import files
from pathlib import Path
import numpy as np
import pytest
from rnnlit.data import _CORPUS_PYTHON, _CORPUS_SHA256, Vocab, batchify

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
        "c = stdlib_corpus().encode(); print(hashlib.sha256(c).hexdigest(), len(c))",  # in the kernel
        RUN_RECIPE]]
    nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': str(tmp_path)}}).execute()
    out = [''.join(o.get('text', '') for o in c.outputs) for c in nb.cells]
    getpass_from, pdb_from = out[0].split()
    assert getpass_from != 'getpass' and pdb_from != 'pdb', out[0]      # the kernel replaced both
    digest, size = out[2].split()
    assert digest != _CORPUS_SHA256 and int(size) < len(SHIPPED)       # so in-process: a smaller file
    assert 'the shipped corpus.txt byte for byte' in out[3], out[3]     # the cell's fresh interpreter
    assert hashlib.sha256((tmp_path/'corpus.txt').read_bytes()).hexdigest() == _CORPUS_SHA256
    assert tree() == before                                             # nothing in the tree


def test_batchify_checks_B_with_the_shared_positive_int_check():
    with pytest.raises(ValueError, match='`B`'): batchify(np.arange(10), 0)
    with pytest.raises(TypeError, match='`B`'): batchify(np.arange(10), True)
    with pytest.raises(TypeError, match='`B`'): batchify(np.arange(10), 2.0)


def test_the_recipe_stops_and_names_a_module_that_fails_to_import(tmp_path):
    "A Python built without _tkinter would make another corpus: the recipe raises instead of skipping."
    script = RECIPE + """
import importlib
real = importlib.import_module
def fake(name, *args):
    if name == 'turtle': raise ModuleNotFoundError("No module named '_tkinter'")
    return real(name, *args)
importlib.import_module = fake
try: stdlib_corpus()
except RuntimeError as e: print(e)
"""
    r = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0 and "turtle (ModuleNotFoundError: No module named '_tkinter')" in r.stdout
    assert 'modules failed to import, so the corpus would not be the shipped one' in r.stdout, r.stdout


def test_a_lone_apostrophe_is_a_word_when_decoding():
    v = Vocab.from_text("rock ' n ' roll, the dogs' toys", 'word')
    assert v.decode(v.encode("rock ' n ' roll")) == "rock ' n ' roll"
    assert v.decode(v.encode("the dogs' toys")) == "the dogs' toys"
