"""Every notebook (the book and the worked solutions), executed top to bottom by nbdev's test runner, each in
its own process, two at a time; the docs build reuses the executed copies."""
from concurrent.futures import ThreadPoolExecutor
import pytest
from conftest import docs_build

NOTEBOOKS = docs_build.all_notebooks()
key = lambda nb: str(docs_build.rel(nb))


@pytest.fixture(scope='module')
def runs(request) -> dict:
    "{notebook: (ok, seconds, error)} for the notebooks this session selected, run two at a time."
    selected = {key(it.callspec.params['nb']) for it in request.session.items
                if getattr(it, 'originalname', '') == 'test_notebook'}
    nbs = [nb for nb in NOTEBOOKS if key(nb) in selected]
    run = lambda nb: (key(nb), docs_build.execute_one(nb, docs_build.BUILD/'exec'/docs_build.rel(nb)))
    with ThreadPoolExecutor(2) as ex: return dict(ex.map(run, nbs))


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[key(p) for p in NOTEBOOKS])
def test_notebook(runs, nb):
    ok, seconds, err = runs[key(nb)]
    assert ok, f"{key(nb)} failed after {seconds:.1f}s:\n{err}"


def test_every_chapter_is_a_notebook():
    names = [key(p) for p in NOTEBOOKS]
    assert 'index.ipynb' in names and '01_cell.ipynb' in names and 'solutions/01_cell.ipynb' in names
