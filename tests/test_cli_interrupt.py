"""Ctrl-C during `rnnlit train`, `--resume`, and the checkpoint's file mode, all through the real command.

A run of TOTAL small steps evaluates and saves at every TOTAL // 6 steps. An interrupted run saves where it
stopped; resumed with no `--steps`, it must end bit for bit where the run that was never interrupted ended.
"""
import os, signal, subprocess, sys, time
import numpy as np
import pytest
from rnnlit.data import load_text
from rnnlit.train import load_checkpoint
from test_cli import ENV, RNNLIT, one_line, rnnlit

TOTAL = 600
SETTINGS = ['--hidden', '16', '--seq-len', '10', '--batch', '4', '--lr', '0.01']
RESUME_LINE = 'interrupted at step {n}; checkpoint saved to {ck}; continue with: rnnlit train {text} --resume {ck}'


@pytest.fixture(scope='module')
def text(tmp_path_factory):
    f = tmp_path_factory.mktemp('text')/'t.txt'
    f.write_text(load_text('corpus')[:20_000])
    return f


@pytest.fixture(scope='module')
def whole(text, tmp_path_factory):
    "The checkpoint of the run that nobody interrupted."
    out = tmp_path_factory.mktemp('whole')
    r = rnnlit('train', text.name, *SETTINGS, '--steps', TOTAL, '--out', out, '--no-progress', cwd=text.parent)
    assert r.returncode == 0, r.stderr
    return out/'checkpoint.npz'


def popen(*args, pre=None, cwd=None):
    "Start the command as a shell would, with Ctrl-C's default action; `pre`: Python run before `main`."
    cmd = [RNNLIT] if pre is None else [sys.executable, '-c',
                                        f"import sys; {pre}\nfrom rnnlit.cli import main; sys.exit(main())"]
    return subprocess.Popen([*cmd, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV, cwd=cwd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def same_run(a, b):
    "Two checkpoints hold the same run: every array (parameters, optimizer, losses, state, rng) is equal."
    a, b = np.load(a), np.load(b)
    assert sorted(a.files) == sorted(b.files)
    for k in a.files: assert np.array_equal(a[k], b[k]), k


def check_interrupted(p, out, text, timeout=120):
    "The process ended as Ctrl-C should: exit 130, one line saying how to continue, the files saved."
    stdout, stderr = p.communicate(timeout=timeout)
    ck = out/'checkpoint.npz'
    a = load_checkpoint(ck)['arrays']
    n = int(a['step'])
    assert p.returncode == 130 and 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr, stderr
    assert stderr.rstrip().splitlines()[-1].split('\r')[-1] == RESUME_LINE.format(n=n, ck=ck, text=text.name)
    assert len(a['losses']) == n and (out/'loss.png').stat().st_size > 5000
    assert sorted(f.name for f in out.iterdir()) == ['checkpoint.npz', 'loss.png']   # no temporary file left
    return n


def test_ctrl_c_saves_and_resume_finishes_the_same_run(text, whole, tmp_path):
    "A real SIGINT after the first evaluation's checkpoint appeared; then `--resume` with no `--steps`."
    out = tmp_path/'run'
    p = popen('train', text.name, *SETTINGS, '--steps', TOTAL, '--out', out, cwd=text.parent)   # progress bar on
    assert p.stdout.readline().startswith(f'training on {text.name}:')
    deadline = time.monotonic() + 60
    while not (out/'checkpoint.npz').exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)
    time.sleep(0.01)
    p.send_signal(signal.SIGINT)            # an impatient second Ctrl-C changes nothing
    n = check_interrupted(p, out, text)
    assert TOTAL // 6 <= n < TOTAL
    r = rnnlit('train', text.name, '--resume', out/'checkpoint.npz', '--no-progress', cwd=text.parent)
    assert r.returncode == 0, r.stderr
    assert f'resuming {out/"checkpoint.npz"} at step {n} of {TOTAL}' in r.stdout
    same_run(out/'checkpoint.npz', whole)


# os.kill from inside the process lands the real SIGINT in a chosen step, so these two are deterministic.
KILL_AT = "from rnnlit.train import Trainer; import os, signal; step = Trainer.train_step\n" \
          "def train_step(self):\n" \
          "    if self.step == {k}: os.kill(os.getpid(), signal.SIGINT)\n" \
          "    return step(self)\n" \
          "Trainer.train_step = train_step"


def test_ctrl_c_in_the_first_step_saves_that_step(text, tmp_path):
    out = tmp_path/'run'
    p = popen('train', text.name, *SETTINGS, '--steps', TOTAL, '--out', out, pre=KILL_AT.format(k=0), cwd=text.parent)
    assert check_interrupted(p, out, text) == 1
    assert load_checkpoint(out/'checkpoint.npz')['arrays']['evals'].size == 0   # saved before any evaluation


def test_ctrl_c_before_the_first_step_saves_the_untrained_run(text, whole, tmp_path):
    "Ctrl-C while the trainer is being built: nothing is trained, step 0 is saved, and resuming it works."
    out = tmp_path/'run'
    pre = ("from rnnlit.train import Trainer; import os, signal; init = Trainer.__init__\n"
           "def __init__(self, *a, **k): init(self, *a, **k); os.kill(os.getpid(), signal.SIGINT)\n"
           "Trainer.__init__ = __init__")
    p = popen('train', text.name, *SETTINGS, '--steps', TOTAL, '--out', out, pre=pre, cwd=text.parent)
    assert check_interrupted(p, out, text) == 0
    r = rnnlit('train', text.name, '--resume', out/'checkpoint.npz', '--no-progress', cwd=text.parent)
    assert r.returncode == 0, r.stderr
    same_run(out/'checkpoint.npz', whole)


def test_resume_between_evaluations_keeps_their_schedule(text, whole, tmp_path):
    "Stopped at step 250 (evaluations at 100, 200, 300, ...): the resumed run still evaluates at 300."
    out = tmp_path/'run'
    p = popen('train', text.name, *SETTINGS, '--steps', TOTAL, '--out', out, '--no-progress',
              pre=KILL_AT.format(k=249), cwd=text.parent)
    assert check_interrupted(p, out, text) == 250
    r = rnnlit('train', '--resume', out/'checkpoint.npz', '--no-progress', cwd=text.parent)   # text from the checkpoint
    assert r.returncode == 0, r.stderr
    same_run(out/'checkpoint.npz', whole)
    assert [int(s) for s, _ in load_checkpoint(whole)['arrays']['evals']] == [100, 200, 300, 400, 500, 600]


def test_resume_steps_is_the_runs_total(text, whole, tmp_path):
    out = tmp_path/'more'
    r = rnnlit('train', text, '--resume', whole, '--steps', TOTAL + 30, '--out', out, '--no-progress')
    assert r.returncode == 0, r.stderr
    a = load_checkpoint(out/'checkpoint.npz')['arrays']
    assert int(a['step']) == TOTAL + 30 and len(a['losses']) == TOTAL + 30
    assert load_checkpoint(out/'checkpoint.npz')['config']['steps'] == TOTAL + 30


@pytest.mark.parametrize('extra, msg', [
    (['--steps', str(TOTAL)], f'--steps {TOTAL}: '),                         # nothing left to train
    (['--hidden', '32'], '--hidden 32: '),                                   # a different setting
    (['--by-line'], '--by-line: '),
])
def test_resume_refuses_what_would_not_continue_the_run(text, whole, extra, msg):
    err = one_line(rnnlit('train', text, '--resume', whole, *extra))
    assert err.startswith(f'rnnlit train: {msg}')


def test_resume_refuses_a_different_text(whole, tmp_path):
    other = tmp_path/'other.txt'
    other.write_text(load_text('corpus')[20_000:40_000])
    assert 'was trained on a different text' in one_line(rnnlit('train', other, '--resume', whole, '--steps', 700))


def test_resume_needs_a_checkpoint(tmp_path):
    (tmp_path/'folder').mkdir()
    assert one_line(rnnlit('train', '--resume', tmp_path/'nope.npz')).endswith('no such checkpoint file')
    assert one_line(rnnlit('train', '--resume', tmp_path/'folder')).endswith('is a folder, not a checkpoint file')


def test_checkpoint_gets_an_ordinary_files_mode(text, tmp_path):
    "Saved through a temporary file (mode 0600), the checkpoint still ends with 0o666 & ~umask."
    for umask in (0o022, 0o027):
        out = tmp_path/f'run{umask:o}'
        r = subprocess.run([RNNLIT, 'train', text, *SETTINGS, '--steps', '3', '--out', out, '--no-progress'],
                           capture_output=True, text=True, env=ENV, timeout=120, preexec_fn=lambda: os.umask(umask))
        assert r.returncode == 0, r.stderr
        for name in ('checkpoint.npz', 'loss.png'):
            assert (out/name).stat().st_mode & 0o777 == 0o666 & ~umask, (name, oct(umask))


def test_ctrl_c_in_sample_is_one_line(whole):
    "`sample` has nothing to save: Ctrl-C (landing as sampling starts) ends it in one line, exit 130."
    from test_cli import run
    pre = ("import os, signal, rnnlit.train as T; s = T.sample\n"
           "T.sample = lambda *a, **k: (os.kill(os.getpid(), signal.SIGINT), s(*a, **k))[1]\n")
    assert one_line(run('sample', whole, '--length', 10**6, pre=pre), code=130) == 'rnnlit sample: interrupted'


def test_resume_a_checkpoint_saved_by_the_library(text, tmp_path):
    "`Trainer.save` outside the command records no run length: `--resume` asks for `--steps`, then goes on."
    from rnnlit.train import Trainer
    t = Trainer(text.read_text(), source=str(text), hidden=16, seq_len=10, batch=4)
    t.fit(3, progress=False)
    ck = t.save(tmp_path/'lib'/'checkpoint.npz')
    assert "give --steps, the run's total" in one_line(rnnlit('train', '--resume', ck))
    r = rnnlit('train', '--resume', ck, '--steps', 5, '--no-progress')
    assert r.returncode == 0, r.stderr
    assert int(load_checkpoint(ck)['arrays']['step']) == 5
