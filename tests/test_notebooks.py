"""Every notebook (the book and the worked solutions), executed top to bottom by nbdev's test runner."""
import pytest
from conftest import docs_build

NOTEBOOKS = docs_build.all_notebooks()


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[str(docs_build.rel(p)) for p in NOTEBOOKS])
def test_notebook(nb):
    ok, seconds, err = docs_build.execute_one(nb, docs_build.BUILD/'exec'/docs_build.rel(nb))
    assert ok, f"{nb.name} failed after {seconds:.1f}s:\n{err}"


def test_every_chapter_is_a_notebook():
    names = [str(docs_build.rel(p)) for p in NOTEBOOKS]
    assert 'index.ipynb' in names and '01_cell.ipynb' in names and 'solutions/01_cell.ipynb' in names
