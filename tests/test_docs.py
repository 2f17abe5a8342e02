"""The documentation site: built from the notebooks, complete, and clean in a real browser."""
import ast, functools, http.server, os, re, shutil, threading, warnings
from pathlib import Path
from urllib.parse import urlparse
import pytest
from conftest import ROOT, docs_build

SHOTS = ROOT/'_build'/'browser'           # one full-page screenshot per page lands here
WINDOW = {'width': 1440, 'height': 900}   # the window the site is checked at: code and tables must fit
SEARCH_WORD = 'orthogonal'                # a word chapter 1 uses
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']


@pytest.fixture(scope='session')
def site():
    return docs_build.build()


def exported_symbols() -> dict[str, list[str]]:
    "{module: its `__all__`} for every generated module of the package."
    out = {}
    for p in sorted((ROOT/'rnnlit').glob('*.py')):
        if p.name.startswith('_'): continue
        for node in ast.parse(p.read_text()).body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == '__all__':
                out[p.stem] = ast.literal_eval(node.value)
    return out


def chapter_pages(): return [p.stem + '.html' for p in docs_build.notebooks()]


def test_every_notebook_is_a_page_in_sidebar_order(site):
    index = (site/'index.html').read_text()
    for page in chapter_pages(): assert (site/page).exists(), page
    for nb in docs_build.solutions(): assert (site/'solutions'/(nb.stem + '.html')).exists(), nb.name
    chapters = [p for p in chapter_pages() if p != 'index.html']
    positions = [index.find(f'href="{p}"') for p in chapters]
    assert all(i >= 0 for i in positions) and positions == sorted(positions), (chapters, positions)


def test_every_exported_symbol_has_an_api_entry_with_its_docments(site):
    html = {p: (site/p).read_text() for p in chapter_pages()}
    for mod, names in exported_symbols().items():
        page = next(p for p in html if re.match(rf'\d+[a-z]?_{mod}\.html$', p))
        for name in names: assert re.search(rf'<h[234][^>]*>{name}<', html[page]), f'no API entry for {mod}.{name}'
    # docments: the comment beside each parameter is shown with it
    assert 'token ids (B,)' in html['01_cell.html'] and 'size of the hidden state' in html['01_cell.html']


def test_plots_and_local_mathjax_are_in_the_site(site):
    assert len(list((site/'_images').glob('*.png'))) >= 2             # chapter 1: the cell and its memory
    assert (site/'_static'/'mathjax'/'tex-chtml.js').exists()
    assert 'mathjax/tex-chtml.js' in (site/'01_cell.html').read_text()


def _chromium():
    "The browser to drive: Debian's /usr/bin/chromium, else a browser Playwright installed itself."
    if Path('/usr/bin/chromium').exists(): return '/usr/bin/chromium'
    try:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            exe = p.chromium.executable_path
            if exe and Path(exe).exists(): return exe
    except Exception: pass


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


def _serve(folder):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}'


@pytest.fixture(scope='session')
def served(site):
    srv, url = _serve(site)
    yield url
    srv.shutdown()


@pytest.fixture(scope='session')
def browser():
    exe = _chromium()
    if exe is None:
        msg = ('NO BROWSER: neither /usr/bin/chromium nor a Playwright-installed Chromium exists, so the docs '
               'browser check did NOT run. Install one (Debian: apt-get install chromium).')
        if os.environ.get('CI'): pytest.fail(msg)
        warnings.warn(msg); pytest.skip(msg)
    from playwright.sync_api import sync_playwright
    profile = ROOT/'_build'/'chromium-profile'
    shutil.rmtree(profile, ignore_errors=True)
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=exe, args=CHROMIUM_ARGS,
                                                   headless=True, viewport=WINDOW)
        yield ctx
        ctx.close()


_RAW_TEX = re.compile(r'\$\$|\\\(|\\\[|\\(frac|tanh|sum|mathrm|left|right|partial|top)\b|[_^]\{')
_VISIBLE_TEXT = """() => { const b = document.body.cloneNode(true);
  b.querySelectorAll('pre, code, script, style, mjx-container, .highlight, .MathJax').forEach(e => e.remove());
  return b.innerText; }"""


def _open(ctx, url):
    "Open `url`; return (page, problems) where problems lists every failure the page caused."
    problems = []
    page = ctx.new_page()
    def route(r):
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(('data:', 'blob:')) or host == '127.0.0.1': return r.continue_()
        problems.append(f'request leaving 127.0.0.1: {r.request.url}'); r.abort()
    page.route('**/*', route)
    page.on('requestfailed', lambda r: problems.append(f'failed request: {r.url} ({r.failure})'))
    page.on('response', lambda r: r.status >= 400 and problems.append(f'HTTP {r.status}: {r.url}'))
    page.on('console', lambda m: m.type == 'error' and problems.append(f'console error: {m.text}'))
    page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
    page.goto(url, wait_until='networkidle')
    page.evaluate("() => (window.MathJax && MathJax.startup && MathJax.startup.promise) || true")
    return page, problems


# Every code block (cells and their outputs) and every table must fit the article column: nothing hidden
# behind a horizontal scrollbar, nothing sticking out past the column's right edge.
_OVERFLOW = """() => {
  const art = document.querySelector('article.bd-article') || document.body;
  const limit = art.getBoundingClientRect().right;
  const sel = 'div.highlight pre, div.cell_output pre, div.output pre, table, .pst-scrollable-table-container';
  const out = [];
  for (const e of new Set(document.querySelectorAll(sel))) {
    const r = e.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;                       // not displayed (a folded cell)
    if (e.scrollWidth > e.clientWidth + 1 || r.right > limit + 1)
      out.push({what: e.tagName.toLowerCase() + (e.className ? '.' + e.className.split(' ')[0] : ''),
                text: (e.innerText || '').trim().replace(/\\s+/g, ' ').slice(0, 60),
                scroll: e.scrollWidth, client: e.clientWidth, right: Math.round(r.right), limit: Math.round(limit)});
  }
  return out; }"""

# The sidebar's entries (file name, text) in order, the page's own file name, and its H1 without the anchor.
_NAV = """() => {
  const file = u => new URL(u).pathname.replace(/^\\/+/, '').replace(/(^|\\/)$/, '$1index.html');
  const links = Array.from(document.querySelectorAll('nav.bd-docs-nav a.reference'))
    .map(a => [file(a.href), a.innerText.trim().replace(/\\s+/g, ' ')]);
  const h = document.querySelector('article.bd-article h1, main h1, h1');
  let title = null;
  if (h) { const c = h.cloneNode(true); c.querySelectorAll('a.headerlink').forEach(e => e.remove());
           title = c.innerText.trim().replace(/\\s+/g, ' '); }
  return {here: file(location.href), links, title}; }"""


def overflows(page) -> list[str]:
    "Each code block or table on `page` wider than its container or the article column, named by its first characters."
    return [f"{o['what']} {o['text']!r}...: {o['scroll']}px of content in {o['client']}px, right edge at "
            f"{o['right']}px, the article's at {o['limit']}px" for o in page.evaluate(_OVERFLOW)]


def nav_problems(page, order: list[str]) -> list[str]:
    "The sidebar must list `order` (file names) in that order, and the page's title must equal its own entry."
    nav = page.evaluate(_NAV)
    problems, files = [], [f for f, _ in nav['links']]
    if files != order: problems.append(f'sidebar order {files} is not the reading order {order}')
    entry = dict(nav['links']).get(nav['here'])
    if entry != nav['title']: problems.append(f"title {nav['title']!r} differs from its sidebar entry {entry!r}")
    return problems


def check_page(ctx, url, shot=None, min_math=0, sidebar=None) -> list[str]:
    """Everything wrong with the page at `url`: failed or outside requests, console errors, broken images, raw TeX,
    code or tables too wide for the column, and (given `sidebar`, the expected file order) the sidebar and title."""
    page, problems = _open(ctx, url)
    broken = page.evaluate("() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    problems += [f'broken image: {src}' for src in broken]
    text = page.evaluate(_VISIBLE_TEXT)
    problems += [f'raw TeX in page text: ...{text[max(0, m.start()-40):m.end()+40]!r}...' for m in _RAW_TEX.finditer(text)]
    n_math = page.evaluate("() => document.querySelectorAll('mjx-container').length")
    if n_math < min_math: problems.append(f'only {n_math} formulas typeset by MathJax, expected {min_math} or more')
    problems += [f'too wide: {o}' for o in overflows(page)]
    if sidebar is not None: problems += nav_problems(page, sidebar)
    if shot: page.screenshot(path=str(shot), full_page=True)
    page.close()
    return problems


def reading_order() -> list[str]:
    "The sidebar the site must have: the home page, every other notebook in file order, then the solutions."
    return (['index.html'] + [p for p in chapter_pages() if p != 'index.html']
            + [f'solutions/{p.stem}.html' for p in docs_build.solutions()])


@pytest.mark.browser
def test_every_page_in_the_browser(site, served, browser):
    "Every page at 1440x900: clean, code and tables fit, sidebar in reading order; a full-page screenshot each."
    SHOTS.mkdir(parents=True, exist_ok=True)
    report, order = {}, reading_order()
    for p in sorted(site.glob('*.html')) + sorted(site.glob('solutions/*.html')):
        name = p.relative_to(site).as_posix()
        problems = check_page(browser, f'{served}/{name}', SHOTS/(name[:-5].replace('/', '-') + '.png'),
                              min_math=20 if name == '01_cell.html' else 0,
                              sidebar=order if name in order else None)
        if problems: report[name] = problems
    assert not report, '\n'.join(f'{k}:\n  ' + '\n  '.join(v) for k, v in report.items())


_BAD_PAGE = """<html><head><style>article { width: 500px; } pre { overflow-x: auto; }</style></head><body>
<nav class="bd-docs-nav"><a class="reference" href="index.html">Home</a><a class="reference" href="b.html">B</a>
<a class="reference" href="bad.html">2. Another title</a></nav>
<article class="bd-article"><h1>2. The title<a class="headerlink" href="#">#</a></h1>
<p>Untypeset: $$h_t = \\tanh(x_t W_{xh})$$</p><img src="missing.png">
<div class="highlight"><pre>short_line = 1</pre></div>
<div class="highlight"><pre>overflowing_code = [""" + ', '.join(['0.123456789'] * 12) + """]</pre></div>
<table><tr><td>a fitting table</td></tr></table>
<table><tr><td style="white-space: nowrap">overflowing table """ + 'wide cell ' * 12 + """</td></tr></table>
</article>
<script src="https://cdn.example.org/x.js"></script><script>console.error("boom")</script></body></html>"""


@pytest.mark.browser
def test_the_browser_check_catches_a_broken_page(tmp_path, browser):
    "The check itself can fail: a page with each fault it looks for is reported for each of them, and only them."
    (tmp_path/'bad.html').write_text(_BAD_PAGE)
    srv, url = _serve(tmp_path)
    try: problems = check_page(browser, f'{url}/bad.html', min_math=1, sidebar=['index.html', 'bad.html', 'b.html'])
    finally: srv.shutdown()
    text = '\n'.join(problems)
    for fault in ('raw TeX', 'broken image', 'HTTP 404', 'request leaving 127.0.0.1', 'console error: boom', 'only 0 formulas',
                  "too wide: pre 'overflowing_code = [0.123456789", "too wide: table 'overflowing table wide cell",
                  "sidebar order ['index.html', 'b.html', 'bad.html'] is not the reading order",
                  "title '2. The title' differs from its sidebar entry '2. Another title'"):
        assert fault in text, f'{fault!r} not reported in:\n{text}'
    too_wide = [p for p in problems if p.startswith('too wide')]
    assert len(too_wide) == 2, too_wide          # the short code line and the narrow table fit


@pytest.mark.browser
def test_search_finds_chapter_0(site, served, browser):
    page, problems = _open(browser, f'{served}/search.html?q={SEARCH_WORD}')
    page.wait_for_selector('#search-results ul.search li', timeout=15000)
    hits = page.eval_on_selector_all('#search-results ul.search li a', 'els => els.map(e => e.getAttribute("href"))')
    page.screenshot(path=str(SHOTS/'search.png'), full_page=True)
    page.close()
    assert not problems, problems
    assert any('01_cell' in h for h in hits), hits


def test_no_link_points_at_nbdevs_own_docs_host(site):
    base = docs_build._doc_url()
    for p in site.glob('*.html'): assert base not in p.read_text(), p.name
