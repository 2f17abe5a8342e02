"""The command given careless input: a bad `--out`, files that are not checkpoints, a `--prime` the model never
saw, bad texts and numbers, `--help` and `--version`. Each: one line, non-zero exit, no traceback."""
import json, os, time
import numpy as np
import pytest
import rnnlit as pkg
from rnnlit.data import load_text
from test_cli import one_line, rnnlit

TINY = ['--hidden', '8', '--seq-len', '10', '--batch', '2', '--no-progress']


@pytest.fixture(scope='module')
def text(tmp_path_factory):
    f = tmp_path_factory.mktemp('text')/'t.txt'
    f.write_text(load_text('corpus')[:5_000])
    return f


@pytest.fixture(scope='module')
def checkpoint(text, tmp_path_factory):
    out = tmp_path_factory.mktemp('run')
    r = rnnlit('train', text, *TINY, '--steps', 3, '--out', out)
    assert r.returncode == 0, r.stderr
    return out/'checkpoint.npz'


def bad_outs(tmp):
    "Each `--out` that cannot be the run's folder, and what the message must say."
    (tmp/'a_file').write_text('x')
    (tmp/'taken').mkdir(); (tmp/'taken'/'checkpoint.npz').mkdir()
    return [('/bin/ls', 'is a file, not a folder'), (tmp/'a_file', 'is a file, not a folder'),
            (tmp/'a_file'/'sub', f'{tmp/"a_file"} is a file, not a folder'),
            ('/proc/x', 'cannot create it in /proc'), ('/proc/x/y/z', 'cannot create it in /proc'),
            (tmp/'taken', 'checkpoint.npz is a folder, not a file')]


def test_a_bad_out_fails_before_any_training(tmp_path):
    "On the whole corpus at a size that would train for hours, each bad `--out` is refused within seconds."
    for out, msg in bad_outs(tmp_path):
        t0 = time.monotonic()
        r = rnnlit('train', '--out', out, '--hidden', 1024, '--steps', 10**6, timeout=60)
        err = one_line(r)
        assert err.startswith(f'rnnlit train: --out {out}: ') and msg in err, err
        assert 'training on' not in r.stdout and time.monotonic() - t0 < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file', 'taken']   # nothing left behind


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_an_unwritable_out(tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
    try:
        assert 'cannot write in it' in one_line(rnnlit('train', '--out', ro, '--steps', 10**6))
        assert f'cannot create it in {ro}' in one_line(rnnlit('train', '--out', ro/'new', '--steps', 10**6))
    finally: ro.chmod(0o700)


def test_sample_says_what_is_not_a_checkpoint(tmp_path):
    (tmp_path/'notes.txt').write_text('just some text\n')
    (tmp_path/'noise.bin').write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path/'folder').mkdir()
    np.savez(tmp_path/'objects.npz', a=np.array([{'x': 1}], dtype=object))   # holds a pickle
    (tmp_path/'cut.npz').write_bytes((tmp_path/'objects.npz').read_bytes()[:100])
    for name, msg in [('notes.txt', 'not an rnnlit checkpoint'), ('noise.bin', 'not an rnnlit checkpoint'),
                      ('objects.npz', 'not an rnnlit checkpoint'), ('cut.npz', 'not a readable rnnlit checkpoint'),
                      ('folder', 'is a folder'), ('missing.npz', 'no such checkpoint file')]:
        err = one_line(rnnlit('sample', tmp_path/name))
        assert err.startswith(f'rnnlit sample: {tmp_path/name}: ') and msg in err, err
        assert 'pickle' not in err.lower() and 'unsafe' not in err.lower()


def test_prime_outside_the_vocabulary_names_prime_and_the_characters(checkpoint):
    unseen = [c for c in 'Zq€☃' if c not in load_text('corpus')[:5_000]]
    err = one_line(rnnlit('sample', checkpoint, '--prime', 'the ' + ''.join(unseen)))
    assert err.startswith('rnnlit sample: --prime ') and '`text`' not in err
    assert all(repr(c) in err for c in unseen)
    r = rnnlit('sample', checkpoint, '--prime', 'the ', '--length', 5, '--seed', 0)
    assert r.returncode == 0 and r.stdout.startswith('the ')


def test_version():
    r = rnnlit('--version')
    assert r.returncode == 0 and r.stdout == f'rnnlit {pkg.__version__}\n'


@pytest.mark.parametrize('command', [[], ['train'], ['sample'], ['bench']])
def test_help(command):
    r = rnnlit(*command, '--help')
    assert r.returncode == 0 and r.stdout.startswith('usage: rnnlit') and not r.stderr


@pytest.mark.parametrize('content, msg', [
    (None, 'no such file'), ('folder', 'is a folder, not a text file'), (b'', 'the file is empty'),
    (b' \n\n', 'the file is empty'), (b'\x00\x01\x02binary', 'looks like a binary file'),
    (b'caf\xe9 au lait ' * 10, 'not UTF-8 text (byte 0xe9 at offset 3)'), (b'far too short', 'too few'),
])
def test_train_bad_text_files(tmp_path, content, msg):
    f = tmp_path/'in.txt'
    if content == 'folder': f.mkdir()
    elif content is not None: f.write_bytes(content)
    err = one_line(rnnlit('train', f, '--out', tmp_path/'run'))
    assert err.startswith(f'rnnlit train: {f}: ') and msg in err, err
    assert not (tmp_path/'run').exists()                  # refused before the folder was made


@pytest.mark.parametrize('args', [
    ['train', '--hidden', '0'], ['train', '--hidden', '1.5'], ['train', '--hidden', 'True'],
    ['train', '--steps', '-3'], ['train', '--steps', 'x'], ['train', '--lr', 'nan'], ['train', '--lr', 'inf'],
    ['train', '--lr', '-1'], ['train', '--clip', '0'], ['train', '--seed', '-1'], ['train', '--seed', 'x'],
    ['train', '--level', 'byte'], ['train', '--wat'], ['train', 'a.txt', 'b.txt'], ['train', '--cell', 'tanh'],
    ['sample'], ['sample', 'c.npz', '--temperature', '0'], ['sample', 'c.npz', '--length', '0'],
    ['sample', 'c.npz', '--top-k', 'x'], ['sample', 'c.npz', '--seed', '-2'],
])
def test_bad_numbers_and_options_exit_2(args):
    r = rnnlit(*args)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith('rnnlit')   # argparse: 'rnnlit ...: error: ...'


def test_settings_the_text_cannot_hold(text, tmp_path):
    err = one_line(rnnlit('train', text, '--batch', 500, '--out', tmp_path/'run'))
    assert 'too few' in err and err.startswith('rnnlit train: ')


def test_a_diverging_run_says_how_to_fix_it(text, tmp_path):
    err = one_line(rnnlit('train', text, *TINY, '--optimizer', 'sgd', '--lr', '1e300', '--steps', 20,
                          '--out', tmp_path/'run'))
    assert err.startswith('rnnlit train: step ') and 'Clip the gradient' in err


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_train_sample_and_resume_every_cell(text, tmp_path, cell):
    "`rnnlit train --cell`, then `rnnlit sample` reads the cell from the checkpoint, and `--resume` goes on."
    out = tmp_path/'run'
    r = rnnlit('train', text, *TINY, '--cell', cell, '--steps', 4, '--out', out)
    assert r.returncode == 0, r.stderr
    assert rnnlit('sample', out/'checkpoint.npz', '--seed', 0, '--length', 20).returncode == 0
    r = rnnlit('train', '--resume', out/'checkpoint.npz', '--steps', 7, '--no-progress')
    assert r.returncode == 0 and 'at step 4 of 7' in r.stdout, r.stderr
    a = np.load(out/'checkpoint.npz')
    assert int(a['step']) == 7 and json.loads(str(a['config']))['cell'] == cell
    other = 'gru' if cell == 'lstm' else 'lstm'
    err = one_line(rnnlit('train', '--resume', out/'checkpoint.npz', '--cell', other, '--steps', 9))
    assert f'--cell {other}' in err and f'trained with --cell {cell}' in err


def test_a_bad_cell_is_one_line_exit_2():
    r = rnnlit('train', '--cell', 'tanh')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "argument --cell: invalid choice: 'tanh'" in r.stderr


def test_a_second_run_into_the_same_folder_keeps_the_first(tmp_path):
    "Without --resume or --overwrite, rnnlit train refuses to replace a run; with --overwrite it does."
    text = tmp_path/'t.txt'; text.write_text('a short text to train on, again and again. ' * 50)
    out = tmp_path/'run'
    args = ['train', str(text), '--steps', '2', '--hidden', '8', '--seq-len', '8', '--batch', '2',
            '--no-progress', '--out', str(out)]
    assert rnnlit(*args).returncode == 0
    before = (out/'checkpoint.npz').read_bytes()
    r = rnnlit(*args)
    assert '--overwrite' in one_line(r) and '--resume' in one_line(r)
    assert (out/'checkpoint.npz').read_bytes() == before
    assert rnnlit(*args, '--overwrite', '--seed', '1').returncode == 0
    assert (out/'checkpoint.npz').read_bytes() != before


def test_a_diverged_run_says_so_and_fails(tmp_path):
    text = tmp_path/'t.txt'; text.write_text('a short text to train on, again and again. ' * 50)
    r = rnnlit('train', str(text), '--steps', '20', '--hidden', '8', '--seq-len', '8', '--batch', '2',
               '--lr', '1e9', '--no-progress', '--out', str(tmp_path/'run'))
    assert r.returncode == 1 and 'diverged' in r.stderr and '--lr' in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and 'Traceback' not in r.stderr


def test_sizes_beyond_memory_threads_beyond_the_machine_and_empty_out_are_one_line(tmp_path):
    text = tmp_path/'t.txt'; text.write_text('a short text to train on, again and again. ' * 50)
    r = rnnlit('train', str(text), '--hidden', '1000000000', '--out', str(tmp_path/'m'))
    assert 'not enough memory' in one_line(r)
    assert 'CPUs' in one_line(rnnlit('bench', '--threads', '100000'))
    assert 'empty' in one_line(rnnlit('train', '--out', ''), code=2)
    assert 'cannot write' in one_line(rnnlit('bench', '--out', '/proc/rnnlit-nowhere/b.json'))
