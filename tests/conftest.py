"""Shared fixtures: the project root, the docs build module, and the order of the suite."""
import importlib.util, os, sys
from pathlib import Path
import pytest
from hypothesis import settings

# Locally, hypothesis explores new examples on every run; under CI it replays a fixed set, so that a rare
# example never turns a green submission red without a change to the code.
settings.register_profile('ci', derandomize=True, print_blob=True)
if os.environ.get('CI'): settings.load_profile('ci')

ROOT = Path(__file__).resolve().parent.parent


def _load_docs_build():
    spec = importlib.util.spec_from_file_location('rnnlit_docs_build', ROOT/'docs'/'build.py')
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


docs_build = _load_docs_build()


@pytest.fixture(scope='session')
def build(): return docs_build


def pytest_collection_modifyitems(config, items):
    "Run the notebooks first and the docs last, so the docs build reuses the notebooks the suite just executed."
    def rank(item):
        name = Path(str(item.fspath)).name
        return 0 if name == 'test_notebooks.py' else 2 if name == 'test_docs.py' else 1
    items.sort(key=rank)
