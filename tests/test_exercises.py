"""Appendix D: every exercise check passes the library's reference and a correct answer written
from scratch, and rejects typical wrong answers (a missing transpose, a dropped tanh derivative, an
off-by-one in time, a forgotten 1/N, ...) and wrong shapes with a message naming output and index."""
import subprocess, sys
import numpy as np
import pytest
from rnnlit.exercises import ExerciseError, check, list_checks, _CHECKS, _run_cases
from rnnlit.data import tokenize

# ---- correct answers, written from the equations (the solution notebooks' code, condensed) ----
def step(x_t, h_prev, W_xh, W_hh, b_h):
    if h_prev is None: h_prev = np.zeros((x_t.shape[0], W_hh.shape[0]), W_hh.dtype)
    return np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)

def forward(X, h0, P):
    if X.dtype.kind in 'iu': X = np.eye(P['W_xh'].shape[0], dtype=P['W_xh'].dtype)[X]   # one-hot
    h = np.zeros((X.shape[1], P['W_hh'].shape[0]), P['W_hh'].dtype) if h0 is None else h0
    H = []
    for x_t in X:
        h = np.tanh(x_t @ P['W_xh'] + h @ P['W_hh'] + P['b_h'])
        H.append(h)
    H = np.stack(H)
    return H @ P['W_hy'] + P['b_y'], H

def softmax_xent(Z, y, mask=None):
    N = len(Z)
    m = np.ones(N, bool) if mask is None else mask
    z = Z - Z.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    loss = -log_p[np.arange(N), y][m].sum() / m.sum()
    dZ = np.exp(log_p); dZ[np.arange(N), y] -= 1
    return loss, dZ * m[:, None] / m.sum()

def step_backward(dh_t, x_t, h_prev, h_t, W_hh):
    da = dh_t * (1 - h_t ** 2)
    return da, da @ W_hh.T, x_t.T @ da, h_prev.T @ da, da.sum(0)

def bptt(X, targets, h0, P):
    if X.dtype.kind in 'iu': X = np.eye(P['W_xh'].shape[0], dtype=P['W_xh'].dtype)[X]
    T, B = targets.shape
    h0 = np.zeros((B, P['W_hh'].shape[0]), P['W_hh'].dtype) if h0 is None else h0
    Y, H = forward(X, h0, P)
    loss, dY = softmax_xent(Y.reshape(T * B, -1), targets.reshape(-1))
    dY = dY.reshape(Y.shape)
    g = {k: np.zeros_like(v) for k, v in P.items()}
    dh_next = np.zeros_like(h0)
    for t in reversed(range(T)):
        h_prev = H[t - 1] if t else h0
        g['W_hy'] += H[t].T @ dY[t]; g['b_y'] += dY[t].sum(0)
        dh = dY[t] @ P['W_hy'].T + dh_next
        da, dh_next, dWxh, dWhh, dbh = step_backward(dh, X[t], h_prev, H[t], P['W_hh'])
        g['W_xh'] += dWxh; g['W_hh'] += dWhh; g['b_h'] += dbh
    return loss, g

def clip_grad_norm(grads, max_norm):
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
    if np.isfinite(norm) and norm > max_norm:
        for g in grads.values(): g *= max_norm / norm
    return norm

def encode_words(text, vocab):
    unk = vocab.stoi['<unk>']
    return np.array([vocab.stoi.get(w, unk) for w in tokenize(text, 'word')], dtype=np.int64)

def batchify(ids, B):
    n = len(ids) // B
    return ids[:n * B].reshape(B, n).T

def adam_step(p, g, m, v, t, lr, b1, b2, eps):
    m *= b1; m += (1 - b1) * g
    v *= b2; v += (1 - b2) * g * g
    p -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)

def next_distribution(rnn, vocab, prime, temperature):
    _, H = rnn.forward(vocab.encode(prime)[:, None])
    z = (H[-1, 0] @ rnn.params['W_hy'] + rnn.params['b_y']).astype(np.float64) / temperature
    p = np.exp(z - z.max())
    return p / p.sum()

def torch_layout(P):
    return {'rnn.weight_ih_l0': P['W_xh'].T, 'rnn.weight_hh_l0': P['W_hh'].T,
            'rnn.bias_ih_l0': P['b_h'], 'rnn.bias_hh_l0': np.zeros_like(P['b_h']),
            'head.weight': P['W_hy'].T, 'head.bias': P['b_y']}

def bptt_hh(rnn, X, targets, h, h_prime, h0):
    """Each block's losses walk back h steps from the block's end."""
    P = rnn.params
    Xf = np.eye(P['W_xh'].shape[0], dtype=P['W_xh'].dtype)[X] if X.dtype.kind in 'iu' else X
    T, B = targets.shape
    Y, H = forward(Xf, h0, P)
    loss, dY = softmax_xent(Y.reshape(T * B, -1), targets.reshape(-1))
    dY = dY.reshape(Y.shape)
    g = {k: np.zeros_like(v) for k, v in P.items()}
    g['W_hy'] = H.reshape(T * B, -1).T @ dY.reshape(T * B, -1); g['b_y'] = dY.sum((0, 1))
    for first in range(0, T, h_prime):
        end = min(first + h_prime, T)
        dh_next = np.zeros_like(h0)
        for t in reversed(range(max(end - h, 0), end)):
            dh = dh_next + (dY[t] @ P['W_hy'].T if t >= first else 0)
            h_prev = H[t - 1] if t else h0
            _, dh_next, dWxh, dWhh, dbh = step_backward(dh, Xf[t], h_prev, H[t], P['W_hh'])
            g['W_xh'] += dWxh; g['W_hh'] += dWhh; g['b_h'] += dbh
    return g


def _sigmoid(a): return 1 / (1 + np.exp(-a))

def lstm_step(x_t, h_prev, c_prev, W_xh, W_hh, b_h):
    i, f, g, o = np.split(x_t @ W_xh + h_prev @ W_hh + b_h, 4, axis=1)
    c_t = _sigmoid(f) * c_prev + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c_t), c_t

def gru_step(x_t, h_prev, W_xh, W_hh, b_xh, b_hh):
    xr, xz, xn = np.split(x_t @ W_xh + b_xh, 3, axis=1)
    hr, hz, hn = np.split(h_prev @ W_hh + b_hh, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    return (1 - z) * np.tanh(xn + r * hn) + z * h_prev

def lstm_step_backward(dh_t, dc_carry, c_prev, gates, c_t, W_hh):
    i, f, g, o = np.split(gates, 4, axis=1)
    tc = np.tanh(c_t)
    dc = dh_t * o * (1 - tc ** 2) + dc_carry                               # (L2)
    da = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),  # (L3)
                         dc * i * (1 - g ** 2), dh_t * tc * o * (1 - o)], 1)
    return da, da @ W_hh.T, dc * f

def bi_states(X, P_f, P_r):
    def run(X, P):
        h, H = np.zeros((X.shape[1], P['W_hh'].shape[0]), P['W_hh'].dtype), []
        for x in X:
            h = np.tanh(x @ P['W_xh'] + h @ P['W_hh'] + P['b_h']); H.append(h)
        return np.stack(H)
    return np.concatenate([run(X, P_f), run(X[::-1], P_r)[::-1]], -1)


RIGHT = dict(step=step, forward=forward, softmax_xent=softmax_xent, step_backward=step_backward,
             bptt=bptt, clip_grad_norm=clip_grad_norm, bptt_hh=bptt_hh, encode_words=encode_words,
             batchify=batchify, adam_step=adam_step, next_distribution=next_distribution,
             torch_layout=torch_layout, lstm_step=lstm_step, gru_step=gru_step,
             lstm_step_backward=lstm_step_backward,
             bi_states=bi_states)
TORCH = {'torch_layout'}


def _needs(name):
    if name in TORCH: pytest.importorskip('torch')


def test_every_check_has_a_right_answer_here():
    assert set(RIGHT) == set(_CHECKS) == set(list_checks())


@pytest.mark.parametrize('name', sorted(_CHECKS))
def test_reference_passes(name, capsys):
    _needs(name)
    check(name, _CHECKS[name].reference)
    n = _run_cases(name, _CHECKS[name].reference)
    assert n >= 3 and capsys.readouterr().out == f"✓ {name}: all {n} cases match\n"


@pytest.mark.parametrize('name', sorted(_CHECKS))
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_right_answer_passes(name, seed):
    _needs(name)
    assert _run_cases(name, RIGHT[name], seed=seed) >= 3


# ---- typical wrong answers ----
def _bi_unflipped(X, P_f, P_r):                    # the reverse states left in the order s, not t
    H = bi_states(X, P_f, P_r)
    n = H.shape[-1] // 2
    return np.concatenate([H[..., :n], H[::-1, :, n:]], -1)

def _no_h_prev(x_t, h_prev, W_xh, W_hh, b_h):
    return np.tanh(x_t @ W_xh + h_prev @ W_hh + b_h)          # forgets that None means zeros

def _shifted_forward(X, h0, P):                     # off by one in time: returns h_0..h_{T-1}
    logits, H = forward(X, h0, P)
    h0 = np.zeros_like(H[0]) if h0 is None else h0
    H = np.concatenate([h0[None], H[:-1]])
    return H @ P['W_hy'] + P['b_y'], H

def _no_lse(Z, y, mask=None):                                   # exp without subtracting the max
    m = np.ones(len(Z), bool) if mask is None else mask
    p = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    loss = -np.log(p[np.arange(len(Z)), y])[m].mean()
    p[np.arange(len(Z)), y] -= 1
    return loss, p * m[:, None] / m.sum()

def _bptt_off_by_one(X, targets, h0, P):            # dW_hh pairs h_t with da_t, not h_{t-1}
    loss, g = bptt(X, targets, h0, P)
    Xf = np.eye(P['W_xh'].shape[0], dtype=P['W_xh'].dtype)[X] if X.dtype.kind in 'iu' else X
    _, H = forward(Xf, h0, P)
    D = np.zeros_like(H); dh = np.zeros_like(H[0])
    _, dY = softmax_xent((H @ P['W_hy'] + P['b_y']).reshape(-1, P['b_y'].size), targets.reshape(-1))
    dY = dY.reshape(H.shape[:2] + (-1,))
    for t in reversed(range(len(H))):
        D[t] = (dY[t] @ P['W_hy'].T + dh) * (1 - H[t] ** 2); dh = D[t] @ P['W_hh'].T
    g['W_hh'] = np.einsum('tbi,tbj->ij', H, D)
    return loss, g

def _adam_no_correction(p, g, m, v, t, lr, b1, b2, eps):
    m *= b1; m += (1 - b1) * g; v *= b2; v += (1 - b2) * g * g
    p -= lr * m / (np.sqrt(v) + eps)

def _next_first_step(rnn, vocab, prime, temperature):           # reads the first step's scores
    logits, _ = rnn.forward(vocab.encode(prime)[:, None])
    z = logits[0, 0].astype(np.float64) / temperature
    p = np.exp(z - z.max()); return p / p.sum()

def _per_tensor_clip(grads, max_norm):
    norm = np.sqrt(sum((g.astype(np.float64) ** 2).sum() for g in grads.values()))
    for g in grads.values():
        n = np.linalg.norm(g)
        if np.isfinite(n) and n > max_norm: g *= max_norm / n
    return norm


def _lstm_step_with(x_t, h_prev, c_prev, W_xh, W_hh, b_h, order='ifgo', act=None):
    "An LSTM step that reads its blocks in `order` and applies `act[gate]` (σ, tanh or none)."
    act = {'i': _sigmoid, 'f': _sigmoid, 'g': np.tanh, 'o': _sigmoid, **(act or {})}
    a = dict(zip(order, np.split(x_t @ W_xh + h_prev @ W_hh + b_h, 4, axis=1)))
    i, f, g, o = (act[k](a[k]) for k in 'ifgo')
    c_t = f * c_prev + i * g
    return o * np.tanh(c_t), c_t

def _gru_step_cho(x_t, h_prev, W_xh, W_hh, b_xh, b_hh):     # r before the product (Cho et al.)
    n = h_prev.shape[1]
    xr, xz, xn = np.split(x_t @ W_xh + b_xh, 3, axis=1)
    hr, hz, _ = np.split(h_prev @ W_hh + b_hh, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    return (1 - z) * np.tanh(xn + (r * h_prev) @ W_hh[:, 2 * n:] + b_hh[2 * n:]) + z * h_prev

def _gru_step_swapped_z(x_t, h_prev, W_xh, W_hh, b_xh, b_hh):   # z weighs the candidate instead
    xr, xz, xn = np.split(x_t @ W_xh + b_xh, 3, axis=1)
    hr, hz, hn = np.split(h_prev @ W_hh + b_hh, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    return z * np.tanh(xn + r * hn) + (1 - z) * h_prev

def _lstm_step_backward_with(dh_t, dc_carry, c_prev, gates, c_t, W_hh, tanh_grad=True,
                             carry=True, out_from='h', times_f=True, order='ifgo'):
    "`lstm_step_backward` with one of its typical slips switched on."
    i, f, g, o = np.split(gates, 4, axis=1)
    tc = np.tanh(c_t)
    dc = dh_t * o * ((1 - tc ** 2) if tanh_grad else 1) + (dc_carry if carry else 0)
    d_o = dh_t if out_from == 'h' else dc                  # δa^o from δh_t, not from δc_t
    da = dict(i=dc * g * i * (1 - i), f=dc * c_prev * f * (1 - f), g=dc * i * (1 - g ** 2),
              o=d_o * tc * o * (1 - o))
    da = np.concatenate([da[k] for k in order], 1)
    return da, da @ W_hh.T, dc * f if times_f else dc

WRONG = [  # (check, wrong answer, the output the message must name, what it shows)
    ('step', lambda x, h, Wxh, Whh, b: step(x, h, Wxh, Whh.T, b), 'h_t', 'index'),
    ('step', lambda x, h, Wxh, Whh, b: step(x, h, Wxh, Whh, 0 * b), 'h_t', 'index'),
    ('step', _no_h_prev, None, 'raised ValueError'),
    ('forward', _shifted_forward, 'logits', 'index'),
    ('forward', lambda X, h0, P: forward(X, None, P), 'logits', 'index'),
    ('softmax_xent', lambda Z, y, m=None: (lambda l, d: (l, d * len(Z)))(*softmax_xent(Z, y, m)),
     'dZ', 'index'),
    ('softmax_xent', lambda Z, y, m=None: softmax_xent(Z, y, None), 'loss', 'expected'),
    ('softmax_xent', _no_lse, 'loss', 'expected'),
    ('step_backward', lambda dh, x, hp, h, W: (dh, dh @ W.T, x.T @ dh, hp.T @ dh, dh.sum(0)),
     'da_t', 'index'),
    ('step_backward', lambda dh, x, hp, h, W: (lambda r: (r[0], r[0] @ W) + r[2:])(
        step_backward(dh, x, hp, h, W)), 'dh_prev', 'index'),
    ('bptt', _bptt_off_by_one, "grads['W_hh']", 'index'),
    ('bptt', lambda X, Y, h0, P: (lambda l, g: (l * Y.size, g))(*bptt(X, Y, h0, P)), 'loss',
     'expected'),
    ('clip_grad_norm', _per_tensor_clip, "grads['W']", 'index'),
    ('clip_grad_norm', lambda g, m: (clip_grad_norm(g, m), min(clip_grad_norm(g, m), m))[1], 'norm',
     'expected'),
    ('bptt_hh', lambda rnn, X, Y, h, hp, h0: bptt(X, Y, h0, rnn.params)[1], "grads['W_xh']",
     'index'),
    ('encode_words', lambda text, v: np.array([v.stoi.get(w, 0) for w in text.split()]), 'ids', ''),
    ('encode_words', lambda text, v: np.array([v.stoi[w] for w in tokenize(text, 'word')]), None,
     'raised KeyError'),
    ('batchify', lambda ids, B: ids[:len(ids) // B * B].reshape(-1, B), 'streams', 'index'),
    ('adam_step', _adam_no_correction, 'p', 'index'),
    ('adam_step', lambda p, g, m, v, t, *a: adam_step(p, g, m, v, t + 1, *a), 'p', 'index'),
    ('next_distribution', lambda rnn, v, prime, temp: next_distribution(rnn, v, prime, 1.0), 'p',
     'index'),
    ('next_distribution', _next_first_step, 'p', 'index'),
    ('torch_layout', lambda P: {**torch_layout(P), 'rnn.weight_hh_l0': P['W_hh']},
     "state['rnn.weight_hh_l0']", 'index'),
    ('torch_layout', lambda P: {**torch_layout(P), 'rnn.bias_hh_l0': P['b_h']},
     "state['rnn.bias_hh_l0']", 'index'),
    ('lstm_step', lambda *a: _lstm_step_with(*a, act={'o': lambda v: v}), 'h_t', 'index'),
    ('lstm_step', lambda *a: _lstm_step_with(*a, act={'f': np.tanh}), 'h_t', 'index'),
    ('lstm_step', lambda *a: _lstm_step_with(*a, order='ifog'), 'h_t', 'index'),
    ('lstm_step', lambda *a: _lstm_step_with(*a, order='igfo'), 'h_t', 'index'),
    ('lstm_step', lambda x, h, c, Wx, Wh, b: lstm_step(x, h, c, Wx, Wh, 0 * b), 'h_t', 'index'),
    ('lstm_step', lambda x, h, c, Wx, Wh, b: lstm_step(x, h, c, Wx, Wh, b)[::-1], 'h_t', 'index'),
    ('gru_step', _gru_step_cho, 'h_t', 'index'),
    ('gru_step', _gru_step_swapped_z, 'h_t', 'index'),
    ('gru_step', lambda x, h, Wx, Wh, bx, bh: gru_step(x, h, Wx, Wh, bx + bh, 0 * bh), 'h_t',
     'index'),
    ('gru_step', lambda x, h, Wx, Wh, bx, bh: gru_step(x, h, Wx, Wh.T, bx, bh), None,
     'raised ValueError'),
    ('lstm_step_backward', lambda *a: _lstm_step_backward_with(*a, tanh_grad=False), 'da_t',
     'index'),
    ('lstm_step_backward', lambda *a: _lstm_step_backward_with(*a, carry=False), 'da_t', 'index'),
    ('lstm_step_backward', lambda *a: _lstm_step_backward_with(*a, out_from='c'), 'da_t', 'index'),
    ('lstm_step_backward', lambda *a: _lstm_step_backward_with(*a, times_f=False), 'dc_prev',
     'index'),
    ('lstm_step_backward', lambda *a: _lstm_step_backward_with(*a, order='ifog'), 'da_t', 'index'),
    ('lstm_step_backward', lambda dh, dcc, cp, G, c, W: (lambda r: (r[0], r[0] @ W, r[2]))(
        lstm_step_backward(dh, dcc, cp, G, c, W)), None, 'raised ValueError'),
    ('bi_states', lambda X, Pf, Pr: np.concatenate(np.split(bi_states(X, Pf, Pr), 2, -1)[::-1], -1),
     'H', 'index'),                                               # [<-h, ->h]: the wrong order
    ('bi_states', lambda X, Pf, Pr: bi_states(X, Pf, Pf), 'H', 'index'),
    ('bi_states', _bi_unflipped, 'H', 'index'),
]


@pytest.mark.parametrize('name, wrong, output, shows', WRONG,
                         ids=[f'{w[0]}-{i}' for i, w in enumerate(WRONG)])
def test_wrong_answer_fails_where(name, wrong, output, shows):
    _needs(name)
    with np.errstate(all='ignore'), pytest.raises(ExerciseError) as e:
        check(name, wrong)
    msg = str(e.value)
    assert msg.startswith(f'{name}, case ') and shows in msg
    if output: assert f'output `{output}`' in msg
    if shows == 'index': assert 'expected' in msg and 'got' in msg and 'relative error' in msg


def _add_axis(v):
    return {k: _add_axis(x) for k, x in v.items()} if isinstance(v, dict) else np.asarray(v)[None]


@pytest.mark.parametrize('name', sorted(set(_CHECKS) - {'adam_step'}))   # adam_step returns nothing
def test_wrong_shape_fails(name):
    "The right answer with an extra leading axis on its first output (on every array, for a dict)."
    _needs(name)
    c = _CHECKS[name]
    def wrong(*args):
        r = RIGHT[name](*args)
        if name == 'clip_grad_norm': return _add_axis(r)     # its one return value is the norm
        return _add_axis(r) if isinstance(c.outputs, str) else (_add_axis(r[0]),) + tuple(r[1:])
    with pytest.raises(ExerciseError, match=r'has shape \(1,'):
        check(name, wrong)


def test_wrong_number_of_outputs_fails():
    with pytest.raises(ExerciseError, match=r'a tuple of 2 outputs \(logits, H\); got one ndarray'):
        check('forward', lambda X, h0, P: forward(X, h0, P)[1])


def test_adam_step_that_changes_nothing_fails():
    with pytest.raises(ExerciseError, match='output `p` at index'):
        check('adam_step', lambda *a: None)


def test_bad_arguments():
    with pytest.raises(ValueError, match="expected one of .*'step'.*got 'stpe'"):
        check('stpe', step)
    with pytest.raises(TypeError, match='expected a function; got str'): check('step', 'step')


def test_import_does_not_import_torch():
    code = "import sys, rnnlit.exercises; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, '-c', code], check=True)
