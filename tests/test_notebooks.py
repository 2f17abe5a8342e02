"""Which notebooks the book has, and how the docs build treats a notebook the suite ran under a Jupyter kernel.

The suite executes every notebook once, in `tests/test_kernel.py`, with every cell included; the docs build shows
those runs (`docs/build.py`'s `keep_run`) with the outputs nbdev's runner would give: the cells it leaves out keep
the outputs saved in the notebook. The check below runs nbdev's own runner on a small notebook to hold
`nbdev_skips` to what nbdev really skips.
"""
import json
import pytest
from conftest import docs_build

NOTEBOOKS = docs_build.all_notebooks()
key = lambda nb: str(docs_build.rel(nb))


def test_every_chapter_is_a_notebook():
    names = [key(p) for p in NOTEBOOKS]
    assert 'index.ipynb' in names and '01_cell.ipynb' in names and 'solutions/01_cell.ipynb' in names


CELLS = {'plain': "", 'eval': "#| eval: false\n", 'cuda': "#| cuda\n", 'export': "",
         'hidden': "#| hide\n", 'echo': "#| echo: false\n"}


def _notebook(tmp_path):
    "A notebook whose every cell appends its name to a file, one cell per kind of directive."
    log = tmp_path/'ran.txt'
    cells = []
    for name, head in CELLS.items():
        body = f"open({str(log)!r}, 'a').write({name!r} + ' ')"
        if name == 'export': body += "\nnbdev_export = lambda: None; nbdev_export()"
        cells.append(dict(cell_type='code', id=name, metadata={}, outputs=[], execution_count=None,
                          source=head + body))
    nb = tmp_path/'t.ipynb'
    nb.write_text(json.dumps(dict(cells=cells, metadata={'kernelspec': {'name': 'python3', 'language': 'python',
                  'display_name': 'Python 3'}, 'language_info': {'name': 'python'}}, nbformat=4, nbformat_minor=5)))
    return nb, log, cells


def test_nbdev_skips_is_what_nbdevs_runner_skips(tmp_path):
    import nbdev.test
    nb, log, cells = _notebook(tmp_path)
    ok, _ = nbdev.test.test_nb(nb, skip_flags=['cuda'])
    assert ok
    ran = log.read_text().split()
    flags = docs_build._tst_flags()
    assert flags == {'cuda'}
    assert ran == [c['id'] for c in cells if not docs_build.nbdev_skips(c['source'], flags)]
    assert ran == ['plain', 'hidden', 'echo']      # and the check is not empty: three cells ran, three did not


def test_keep_run_keeps_the_saved_outputs_of_skipped_cells(tmp_path):
    nb, _, cells = _notebook(tmp_path)
    saved = lambda name: [{'output_type': 'stream', 'name': 'stdout', 'text': f'saved {name}\n'}]
    book = json.loads(nb.read_text())
    for c in book['cells']: c['outputs'] = saved(c['id'])
    nb.write_text(json.dumps(book))
    ran = json.loads(nb.read_text())
    for c in ran['cells']: c['outputs'] = [{'output_type': 'stream', 'name': 'stdout', 'text': 'kernel\n'}]
    docs_build.keep_run(nb, ran, tmp_path/'exec.ipynb')
    out = json.loads((tmp_path/'exec.ipynb').read_text())
    got = {c['id']: c['outputs'][0]['text'] for c in out['cells']}
    assert got == {'plain': 'kernel\n', 'eval': 'saved eval\n', 'cuda': 'saved cuda\n', 'export': 'saved export\n',
                   'hidden': 'kernel\n', 'echo': 'kernel\n'}
    assert out['metadata']['rnnlit_fingerprint'] == docs_build._fingerprint(nb)
