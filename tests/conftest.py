"""Shared fixtures: the project root, the docs build module, and the order of the suite."""
import importlib.util, os, sys, time
from pathlib import Path
import pytest
from hypothesis import settings

# Locally, hypothesis explores new examples on every run; under CI it replays a fixed set, so that a rare
# example never turns a green submission red without a change to the code.
settings.register_profile('ci', derandomize=True, print_blob=True)
if os.environ.get('CI'): settings.load_profile('ci')

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 600    # the README: "on two cores the whole command takes under ten minutes"


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
    "Run the notebooks first (under a kernel) and the docs last, so the docs build shows the runs the suite just made."
    def rank(item):
        name = Path(str(item.fspath)).name
        return 0 if name == 'test_kernel.py' else 2 if name == 'test_docs.py' else 1
    items.sort(key=rank)


def pytest_sessionstart(session): session.rnnlit_started = time.time()


def pytest_sessionfinish(session, exitstatus):
    "The README's bound: a session that ran every test (every file, nothing deselected) fails past the time limit."
    seconds = time.time() - getattr(session, 'rnnlit_started', time.time())
    files = {Path(str(item.fspath)).name for item in session.items}
    everything = files >= {p.name for p in (ROOT/'tests').glob('test_*.py')} and session.testscollected == len(session.items)
    if everything and seconds > TIME_LIMIT_S and not session.config.option.collectonly:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        tr = session.config.pluginmanager.get_plugin('terminalreporter')
        msg = f'FAILED: the whole suite took {seconds:.0f}s, over the README\'s bound of {TIME_LIMIT_S}s'
        if tr: tr.write_line(msg, red=True)
        else: print(msg)
