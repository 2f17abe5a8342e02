"""`rnnlit bench` checks `--out` before minutes of timing, and `rnnlit sample` piped into a reader that stops
early (`| head`) ends quietly."""
import subprocess, time
from rnnlit.data import load_text
from test_cli import ENV, RNNLIT, one_line, rnnlit


def test_bench_refuses_a_bad_out_before_timing_anything(tmp_path):
    (tmp_path/'a_file').write_text('x')
    for out, msg in [(tmp_path, 'is a folder; name the result file'),
                     (tmp_path/'a_file'/'b.json', 'is a file, not a folder'),
                     ('/bin/ls/b.json', '/bin/ls is a file, not a folder')]:
        t = time.time()
        line = one_line(rnnlit('bench', '--out', out))
        assert line.startswith(f'rnnlit bench: --out {out}') and msg in line, line
        assert time.time() - t < 60                          # refused before any timing
    for mode in (['--training'], ['--device', 'cpu']):        # the other two benchmarks, the same way
        assert 'is a folder' in one_line(rnnlit('bench', *mode, '--out', tmp_path))


def test_sample_into_a_pipe_that_closes_early(tmp_path):
    (tmp_path/'t.txt').write_text(load_text('corpus')[:5_000])
    r = rnnlit('train', tmp_path/'t.txt', '--hidden', '8', '--seq-len', '10', '--batch', '2', '--steps', '2',
               '--no-progress', '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr
    # 70 000 characters: more than a pipe's 64 KiB buffer, so writing them hits the closed pipe
    p = subprocess.Popen([RNNLIT, 'sample', str(tmp_path/'run'/'checkpoint.npz'), '--length', '70000'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    p.stdout.read(10); p.stdout.close()                     # what `| head -c 10` does
    assert p.wait(timeout=120) == 0
    assert p.stderr.read() == b''


def test_quick_without_a_device_is_refused_at_once():
    line = one_line(rnnlit('bench', '--quick'))
    assert '--quick' in line and '--device' in line, line
