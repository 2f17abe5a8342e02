"""The small adapter from nbdev's processed notebooks to myst-nb (docs/build.py), cell option by cell option."""
import json
from conftest import docs_build as b


def code(src, outputs=()): return {'cell_type': 'code', 'metadata': {}, 'source': src, 'outputs': list(outputs), 'execution_count': 1}
def md(src): return {'cell_type': 'markdown', 'metadata': {}, 'source': src}
def raw(src): return {'cell_type': 'raw', 'metadata': {}, 'source': src}
def stream(text): return {'output_type': 'stream', 'name': 'stdout', 'text': text}
def markdown_out(text): return {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': text, 'text/plain': 'x'}}
def convert(*cells): return b.to_myst({'cells': list(cells), 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})['cells']


def test_split_directives():
    assert b.split_directives('#| echo: false\n#|output: asis\nx = 1\n#| not: leading') == (
        {'echo': 'false', 'output': 'asis'}, 'x = 1\n#| not: leading')
    assert b.split_directives('#| hide\nx')[0] == {'hide': ''}


def test_front_matter_becomes_title_and_lead():
    (cell,) = convert(raw('---\ndescription: A long line\n  folded over two.\noutput-file: cell.html\ntitle: The cell\n---\n'))
    assert cell == md('# The cell\n\n{.lead}\nA long line folded over two.')


def test_directives_become_myst_nb_tags():
    cells = convert(code('#| echo: false\nplot()'), code('#| output: false\nx'), code('#| code-fold: true\ndef f(): pass'),
                    code('#| code-fold: show\n#| code-summary: "Exported source"\ndef g(): pass'),
                    code('#| include: false\nsecret'), code('plain'))
    assert [c['metadata'].get('tags') for c in cells] == [['remove-input'], ['remove-output'], ['hide-input'], None, None]
    assert [c['source'] for c in cells] == ['plot()', 'x', 'def f(): pass', 'def g(): pass', 'plain']


def test_asis_output_becomes_markdown_cells():
    cells = convert(code("#| output: asis\n#| echo: false\nshow_doc(f)", [markdown_out('### f\n\n> f(x)')]),
                    code("#| output: asis\nprint('**hi**')", [stream('**hi**\n')]))
    assert cells == [md('### f\n\n> f(x)'), code("print('**hi**')"), md('**hi**\n')]


def test_callouts_become_admonitions():
    (cell,) = convert(md('::: {.callout-warning}\nCareful.\n:::\n\n::: {.callout-note collapse="true"}\nN\n:::'))
    assert cell['source'] == ':::{warning}\nCareful.\n:::\n\n:::{note}\nN\n:::'


def test_empty_cells_are_dropped():
    assert convert(code(''), code('   ', [])) == []


def test_readme_leaves_out_hidden_and_exported_cells(tmp_path):
    nb = {'cells': [md('# Title'), code('#| hide\nimport secret'), code('#| export\ndef f(): pass'),
                    code('x = 1\nx', [{'output_type': 'execute_result', 'data': {'text/plain': '1'}, 'metadata': {}}]),
                    code('#| echo: false\nprint(2)', [stream('2\n')])],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    (tmp_path/'index.ipynb').write_text(json.dumps(nb))
    text = b.make_readme(tmp_path/'index.ipynb')
    assert 'secret' not in text and 'def f' not in text and 'print(2)' not in text
    assert '# Title\n\n```python\nx = 1\nx\n```\n\n```\n1\n```\n\n```\n2\n```\n' in text


def test_links_to_nbdevs_site_become_links_to_our_pages():
    base = 'https://example.org/lib/'
    md = ("See [`RNN.forward`](https://example.org/lib/unroll.html#rnn.forward) and [`x`](https://other.org/a.html).\n"
          "```python\ndef f(a, # from [`sweep`](https://example.org/lib/torch_rnn.html#sweep)\n):\n```\n")
    out = b.local_links(md, {'unroll': '02_unroll', 'torch_rnn': '07_torch_rnn'}, base)
    assert '[`RNN.forward`](02_unroll.ipynb#rnnforward)' in out and '[`x`](https://other.org/a.html)' in out
    assert '# from `sweep`\n' in out                                  # inside code: the name, not a link
    private = b.local_links('[`_recur`](https://example.org/lib/unroll.html#_recur) and '
                            '[`RNN._grads_with`](https://example.org/lib/bptt.html#rnn._grads_with)',
                            {'unroll': '02_unroll', 'bptt': '03_bptt'}, base)
    assert private == '`_recur` and `RNN._grads_with`'               # no API entry: the name alone
    ids = {'06_train': {'trainer', 'trainersave'}}
    method = b.local_links('[`Trainer.fit`](https://example.org/lib/train.html#trainer.fit), '
                           '[`Trainer.save`](https://example.org/lib/train.html#trainer.save), '
                           '[`race`](https://example.org/lib/train.html#race)', {'train': '06_train'}, base,
                           anchors=ids)
    assert method == ('[`Trainer.fit`](06_train.ipynb#trainer), [`Trainer.save`](06_train.ipynb#trainersave), '
                      '[`race`](06_train.ipynb)')                   # the class's entry, its own, the page


def test_module_pages_come_from_default_exp():
    pages = b.module_pages()
    assert pages['cell'] == '01_cell' and pages['__init__'] == '99_package'
