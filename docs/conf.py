"""Sphinx configuration for rnnlit's site. `docs/build.py` prepares the notebooks it renders; see there."""
from configparser import ConfigParser
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
_cfg = ConfigParser(delimiters=['=']); _cfg.read(_root/'settings.ini', encoding='utf-8'); _cfg = _cfg['DEFAULT']

project = _cfg['lib_name']
author = _cfg['author']
copyright = _cfg['copyright']
release = version = _cfg['version']

extensions = ['myst_nb', 'sphinx-mathjax-offline']   # the latter serves MathJax 3 from _static/: no network
exclude_patterns = ['_build', '**.ipynb_checkpoints']

# myst-nb renders the outputs the build already computed (docs/build.py executes every notebook first).
nb_execution_mode = 'off'
nb_render_markdown_format = 'myst'          # show_doc's markdown (tables, math) is rendered as MyST
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'attrs_inline', 'attrs_block']
myst_heading_anchors = 3
nb_merge_streams = True
suppress_warnings = ['myst.header']         # notebooks start at H1 and nbdev's API entries use H3 under H2

html_theme = 'sphinx_book_theme'
html_title = 'rnnlit'
html_static_path = ['_static']
html_favicon = '_static/favicon.svg'
html_css_files = ['rnnlit.css']
html_context = {'default_mode': 'light'}
html_theme_options = {
    'repository_url': _cfg['git_url'],
    'use_repository_button': False,
    'show_toc_level': 2,
    'navbar_persistent': [],                # one search box, not two
    'home_page_in_toc': True,
}
html_show_sourcelink = False
