"""Chapter 6: data, optimizers, training, sampling, checkpoints and the train/sample commands."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from rnnlit.data import Vocab, batchify, load_text, n_windows, split, tokenize, unigram_loss, window
from rnnlit.train import (Adagrad, Adam, CheckpointError, SGD, Trainer, TrainingError, load_checkpoint,
                          next_distribution, sample, _pad_lines, _softmax_t)

TEXT = load_text('corpus')[:30_000]
SMALL = dict(level='char', hidden=24, seq_len=16, batch=4, lr=3e-3, seed=3)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=('Cs',)), min_size=1, max_size=200))
def test_char_vocab_round_trip(text):
    v = Vocab.from_text(text)
    assert v.decode(v.encode(text)) == text and len(v) == len(set(text))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(['feeling', 'under', 'the', 'weather', '.', ',', '\n', "don't", '42']), min_size=1, max_size=40))
def test_word_vocab_round_trip_of_its_own_tokens(words):
    text = ' '.join(words)
    v = Vocab.from_text(text, 'word')
    assert v.encode(v.decode(v.encode(text))).tolist() == v.encode(text).tolist()
    assert v.itos[0] == '<unk>' and v.encode('zebra').tolist() == [0]


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 300), st.integers(1, 9), st.integers(1, 12))
def test_batchify_and_windows_cover_the_stream_in_order(n, B, T):
    ids = np.arange(n)
    if n // B < 2:
        with pytest.raises(ValueError): batchify(ids, B)
        return
    S = batchify(ids, B)
    assert S.shape == (n // B, B) and S.T.ravel().tolist() == list(range(S.size))     # each column is consecutive
    for k in range(n_windows(S, T)):
        X, Y = window(S, k, T)
        assert (Y == X + 1).all()                                                  # targets: the next token
        if k: assert (X[0] == window(S, k - 1, T)[1][-1]).all()                      # windows continue each other


def test_unigram_loss_of_uniform_data_is_log_n():
    ids = np.tile(np.arange(8), 100)
    assert abs(unigram_loss(ids, ids, 8) - np.log(8)) < 1e-12


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(['sgd', 'adagrad', 'adam']), st.floats(1e-3, 0.5), st.integers(1, 25), st.integers(0, 1000))
def test_optimizers_match_torch_optim(name, lr, steps, seed):
    rng = np.random.default_rng(seed)
    params = {'a': rng.standard_normal((2, 3)), 'b': rng.standard_normal(4)}
    tp = [torch.tensor(v.copy(), requires_grad=True) for v in params.values()]
    opt, topt = {'sgd': (SGD(params, lr, momentum=0.8), torch.optim.SGD(tp, lr, momentum=0.8)),
                 'adagrad': (Adagrad(params, lr), torch.optim.Adagrad(tp, lr)),
                 'adam': (Adam(params, lr), torch.optim.Adam(tp, lr))}[name]
    for _ in range(steps):
        g = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        for t, k in zip(tp, params): t.grad = torch.tensor(g[k])
        opt.step(g); topt.step()
    for t, k in zip(tp, params): np.testing.assert_allclose(params[k], t.detach().numpy(), atol=1e-11, rtol=0)


@pytest.mark.parametrize('by_line', [False, True])
def test_resume_is_bitwise_exact(tmp_path, by_line):
    text = load_text('idioms') if by_line else TEXT
    cfg = {**SMALL, 'level': 'word', 'by_line': True, 'batch': 8} if by_line else SMALL
    straight = Trainer(text, **cfg).fit(40, eval_every=10, progress=False)
    first = Trainer(text, **cfg).fit(25, eval_every=10, progress=False)
    path = first.save(tmp_path/'ck.npz')
    assert [p.name for p in tmp_path.iterdir()] == ['ck.npz']                     # no temporary file left behind
    second = Trainer.resume(path, text).fit(15, eval_every=10, progress=False)
    assert np.array_equal(second.losses, straight.losses)
    assert second.step == straight.step and np.array_equal(second.h, straight.h)
    for k, v in straight.rnn.params.items(): assert np.array_equal(second.rnn.params[k], v)
    assert second.sample('feeling' if by_line else 'The', 20) == straight.sample('feeling' if by_line else 'The', 20)


def test_checkpoint_errors_name_the_file(tmp_path):
    t = Trainer(TEXT, **SMALL).fit(3, progress=False)
    path = t.save(tmp_path/'good.npz')
    (tmp_path/'trunc.npz').write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    (tmp_path/'text.npz').write_text('not a checkpoint')
    np.savez(tmp_path/'other.npz', a=np.zeros(2))
    a = dict(np.load(path)); a['param/W_hh'] = np.zeros((3, 3), np.float32); np.savez(tmp_path/'shape.npz', **a)
    a = dict(np.load(path)); del a['h']; np.savez(tmp_path/'partial.npz', **a)
    (tmp_path/'folder.npz').mkdir()
    for name, msg in [('trunc.npz', 'not a readable rnnlit checkpoint'), ('text.npz', 'not an rnnlit checkpoint'),
                      ('folder.npz', 'is a folder, not a checkpoint file'),
                      ('other.npz', 'not an rnnlit checkpoint'), ('shape.npz', 'parameter W_hh has shape (3, 3)'),
                      ('partial.npz', 'incomplete checkpoint, missing h'), ('nope.npz', 'no such checkpoint file')]:
        with pytest.raises(CheckpointError) as e: load_checkpoint(tmp_path/name)
        assert str(tmp_path/name) in str(e.value) and msg in str(e.value), str(e.value)
    with pytest.raises(CheckpointError, match='different text'): Trainer.resume(path, TEXT[:-1])


def test_non_finite_loss_stops_training_and_keeps_the_checkpoint(tmp_path):
    t = Trainer(TEXT, **{**SMALL, 'lr': 1e30, 'clip': None})
    path = t.save(tmp_path/'ck.npz')
    with pytest.raises(TrainingError, match='lower the learning rate') as e:
        t.fit(200, eval_every=1, progress=False, checkpoint=path)
    assert 'Clip the gradient' in str(e.value)
    assert all(np.isfinite(v).all() for v in t.rnn.params.values())        # the bad gradient was never applied
    ck = load_checkpoint(path)                                                 # the last good step's checkpoint
    assert int(ck['arrays']['step']) == t.step < 200
    assert all(np.isfinite(v).all() for v in ck['rnn'].params.values())


def test_sampling():
    t = Trainer(TEXT, **SMALL).fit(30, progress=False)
    greedy = sample(t.rnn, t.vocab, 'The ', 30, greedy=True)
    assert greedy == sample(t.rnn, t.vocab, 'The ', 30, greedy=True) and greedy.startswith('The ')
    assert sample(t.rnn, t.vocab, 'The ', 30, top_k=1, rng=np.random.default_rng(0)) == greedy
    a = sample(t.rnn, t.vocab, 'The ', 50, rng=np.random.default_rng(1))
    assert a == sample(t.rnn, t.vocab, 'The ', 50, rng=np.random.default_rng(1)) and len(a) == 54
    p = next_distribution(t.rnn, t.vocab, 'The ', temperature=0.5)
    assert abs(p.sum() - 1) < 1e-12 and p.max() > next_distribution(t.rnn, t.vocab, 'The ').max()
    for kw, msg in [(dict(temperature=0), '`temperature`'), (dict(top_k=0), '`top_k`'), (dict(length=-1), '`length`')]:
        with pytest.raises(ValueError, match=msg): sample(t.rnn, t.vocab, 'The', **kw)
    with pytest.raises(ValueError, match='not in the vocabulary'): sample(t.rnn, t.vocab, 'The \u2603')


def test_trainer_rejects_bad_settings():
    with pytest.raises(ValueError, match='too few'): Trainer('short text', **SMALL)
    with pytest.raises(ValueError, match='`hidden`'): Trainer(TEXT, **{**SMALL, 'hidden': 0})
    with pytest.raises(TypeError, match='`seq_len`'): Trainer(TEXT, **{**SMALL, 'seq_len': 16.0})
    with pytest.raises(TypeError, match='`batch`'): Trainer(TEXT, **{**SMALL, 'batch': True})
    with pytest.raises(ValueError, match='`optimizer`'): Trainer(TEXT, **{**SMALL, 'optimizer': 'rmsprop'})
    with pytest.raises(TypeError, match='unknown setting'): Trainer(TEXT, hiden=3)


def rnnlit(*args, cwd=None):
    return subprocess.run(['rnnlit', *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_train_and_sample_commands(tmp_path):
    f = tmp_path/'t.txt'; f.write_text(TEXT)
    r = rnnlit('train', f, '--steps', 40, '--hidden', 16, '--seq-len', 10, '--batch', 4, '--out', tmp_path/'run', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert 'held-out loss' in r.stdout and 'perplexity' in r.stdout and 'sample:' in r.stdout
    assert (tmp_path/'run'/'checkpoint.npz').exists() and (tmp_path/'run'/'loss.png').stat().st_size > 5000
    r = rnnlit('sample', tmp_path/'run'/'checkpoint.npz', '--prime', 'The ', '--length', 30, '--seed', 0)
    assert r.returncode == 0 and r.stdout.startswith('The ') and len(r.stdout.rstrip('\n')) == 34


def test_train_defaults_to_the_shipped_corpus(tmp_path):
    r = rnnlit('train', '--steps', 5, '--out', tmp_path/'run', '--no-progress')
    assert r.returncode == 0, r.stderr
    assert 'training on corpus: 96 char tokens' in r.stdout


def test_train_shows_a_progress_bar(tmp_path):
    f = tmp_path/'t.txt'; f.write_text(TEXT)
    r = rnnlit('train', f, '--steps', 30, '--hidden', 8, '--seq-len', 10, '--batch', 2, '--out', tmp_path/'run')
    assert r.returncode == 0 and '30/30' in r.stderr


@pytest.mark.parametrize('content, msg', [
    (None, 'no such file'), (b'', 'the file is empty'), (b'\x00\x01\x02binary', 'looks like a binary file'),
    (b'caf\xe9 au lait ' * 10, 'not UTF-8 text (byte 0xe9 at offset 3)'), (b'far too short', 'too few'),
])
def test_train_bad_text_files(tmp_path, content, msg):
    f = tmp_path/'in.txt'
    if content is not None: f.write_bytes(content)
    r = rnnlit('train', f, '--out', tmp_path/'run')
    assert r.returncode == 1 and 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert msg in r.stderr and r.stderr.startswith('rnnlit train: ')


@pytest.mark.parametrize('args', [['--hidden', '0'], ['--lr', '-1'], ['--lr', 'nan'], ['--steps', 'x'], ['--level', 'byte'],
                                  ['--clip', '0'], ['--wat']])
def test_train_bad_options(tmp_path, args):
    r = rnnlit('train', *args)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'error:' in r.stderr.splitlines()[-1]


def test_sample_bad_input(tmp_path):
    (tmp_path/'bad.npz').write_bytes(b'PK\x03\x04garbage')
    for args, code, msg in [([tmp_path/'bad.npz'], 1, 'not a readable rnnlit checkpoint'),
                            ([tmp_path/'none.npz'], 1, 'no such checkpoint file'),
                            ([tmp_path/'bad.npz', '--temperature', '0'], 2, 'expected a positive number')]:
        r = rnnlit('sample', *args)
        assert r.returncode == code and 'Traceback' not in r.stderr and msg in r.stderr, r.stderr


def test_pad_lines_masks_exactly_the_padding():
    v = Vocab.from_text('a b c\n', 'word')
    lines = [v.encode('a b c\n'), v.encode('a\n'), v.encode('b c\n')]
    X, Y, mask = _pad_lines(lines, v)
    assert X.shape == Y.shape == mask.shape == (3, 3)
    assert mask.T.tolist() == [[True] * 3, [True, False, False], [True, True, False]]
    assert (Y[~mask] == v.stoi['\n']).all() and (X[1:] == Y[:-1]).all()


def test_by_line_word_vocabulary_comes_from_the_training_lines_only(tmp_path):
    text = 'a b c\nb c d\nc d e\nx y a\n'
    t = Trainer(text, level='word', by_line=True, hidden=8, batch=2, valid_frac=0.25, seed=0)
    assert sorted(t.vocab.itos) == sorted(['<unk>', 'a', 'b', 'c', 'd', 'e', '\n'])
    assert [t.vocab.decode(l) for l in t.valid_lines] == ['<unk> <unk> a\n']   # x, y never trained on
    c = Trainer(text, level='char', by_line=True, hidden=8, batch=2, valid_frac=0.25, seed=0)
    assert {'x', 'y'} <= set(c.vocab.itos)                  # characters have no <unk>: every line's
    t.fit(3, progress=False)
    again = Trainer.resume(t.save(tmp_path/'ck.npz'), text)   # the same vocabulary, rebuilt
    assert again.vocab.itos == t.vocab.itos and again.step == 3


def test_by_line_training_and_evaluation_count_real_tokens_only():
    t = Trainer(load_text('idioms'), level='word', by_line=True, hidden=16, batch=8, lr=1e-2, seed=2)
    t.fit(20, progress=False)
    X, Y, mask = _pad_lines(t.valid_lines, t.vocab)
    logits, _ = t.rnn.forward(X)
    z = logits.astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, Y[..., None], -1)[..., 0]               # (T, B)
    assert abs(t.evaluate() - nll[mask].mean()) < 1e-4
    assert abs(t.evaluate() - nll.mean()) > 1e-3                            # padding would change it


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=2, max_size=12), st.floats(0.1, 5.0), st.integers(1, 12))
def test_temperature_softmax(y, tau, k):
    y = np.array(y)
    p1, p = _softmax_t(y), _softmax_t(y, tau)
    assert abs(p.sum() - 1) < 1e-12 and (p >= 0).all()
    np.testing.assert_allclose(p, p1 ** (1 / tau) / (p1 ** (1 / tau)).sum(), atol=1e-9)   # p_τ ∝ p_1^(1/τ)
    pk = _softmax_t(y, tau, top_k=k)
    assert (pk > 0).sum() <= k
    assert abs(pk.sum() - 1) < 1e-12


def test_greedy_sampling_follows_next_distribution():
    t = Trainer(TEXT, **SMALL).fit(10, progress=False)
    text = 'The '
    for _ in range(15): text += t.vocab.itos[int(next_distribution(t.rnn, t.vocab, text).argmax())]
    assert sample(t.rnn, t.vocab, 'The ', 15, greedy=True) == text
    with pytest.raises(TypeError, match='`top_k`'): sample(t.rnn, t.vocab, 'The', top_k=2.5)


@pytest.mark.parametrize('cell', ['lstm', 'gru'])
def test_every_cell_trains_resumes_exactly_and_samples(tmp_path, cell):
    "The gated cells through the one Trainer: the carried state (the LSTM's pair), checkpoints, resume, sampling."
    cfg = {**SMALL, 'cell': cell}
    straight = Trainer(TEXT, **cfg).fit(30, eval_every=10, progress=False)
    first = Trainer(TEXT, **cfg).fit(18, eval_every=10, progress=False)
    path = first.save(tmp_path/'ck.npz')
    ck = load_checkpoint(path)
    assert ck['config']['cell'] == cell and type(ck['rnn']).__name__ == cell.upper()
    assert set(ck['rnn'].params) == set(straight.rnn.params)
    assert ('c' in ck['arrays']) == (cell == 'lstm')
    second = Trainer.resume(path, TEXT).fit(12, eval_every=10, progress=False)
    assert np.array_equal(second.losses, straight.losses)
    for a, b in zip(*(s.h if cell == 'lstm' else (s.h,) for s in (second, straight))): assert np.array_equal(a, b)
    for k, v in straight.rnn.params.items(): assert np.array_equal(second.rnn.params[k], v)
    assert second.sample('The', 20) == straight.sample('The', 20)
    greedy = sample(ck['rnn'], ck['vocab'], 'The ', 15, greedy=True)
    p = next_distribution(ck['rnn'], ck['vocab'], 'The ')
    assert greedy[4] == ck['vocab'].itos[int(p.argmax())]


def test_a_checkpoint_without_a_cell_loads_as_an_rnn(tmp_path):
    "Checkpoints written before chapter 8 name no cell: they are an RNN's, and resume as one."
    t = Trainer(TEXT, **SMALL).fit(5, progress=False)
    path = t.save(tmp_path/'new.npz')
    a = dict(np.load(path))
    cfg = json.loads(str(a['config'])); del cfg['cell']; a['config'] = np.array(json.dumps(cfg))
    np.savez(tmp_path/'old.npz', **a)
    ck = load_checkpoint(tmp_path/'old.npz')
    assert ck['config']['cell'] == 'rnn' and type(ck['rnn']).__name__ == 'RNN'
    assert Trainer.resume(tmp_path/'old.npz', TEXT).fit(3, progress=False).step == 8
    a['config'] = np.array(json.dumps({**cfg, 'cell': 'tanh'})); np.savez(tmp_path/'odd.npz', **a)
    with pytest.raises(CheckpointError, match="unknown cell 'tanh'"): load_checkpoint(tmp_path/'odd.npz')
    lstm = Trainer(TEXT, **{**SMALL, 'cell': 'lstm'}).fit(2, progress=False)
    a = dict(np.load(lstm.save(tmp_path/'l.npz'))); del a['c']; np.savez(tmp_path/'l2.npz', **a)
    with pytest.raises(CheckpointError, match='incomplete checkpoint, missing c'): load_checkpoint(tmp_path/'l2.npz')
    with pytest.raises(ValueError, match=r"`cell`: expected one of 'rnn', 'lstm', 'gru'; got 'tanh'"):
        Trainer(TEXT, **{**SMALL, 'cell': 'tanh'})
