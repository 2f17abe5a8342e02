"""Every notebook, executed top to bottom by nbdev's test runner: one test per notebook."""
import pytest
from conftest import docs_build

NOTEBOOKS = docs_build.notebooks()


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook(nb):
    ok, seconds, err = docs_build.execute_one(nb, docs_build.BUILD/'exec'/nb.name)
    assert ok, f"{nb.name} failed after {seconds:.1f}s:\n{err}"


def test_every_chapter_is_a_notebook():
    names = [p.name for p in NOTEBOOKS]
    assert 'index.ipynb' in names and '01_cell.ipynb' in names
