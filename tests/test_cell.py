"""Chapter 1's cell, checked over many shapes, dtypes and seeds."""
import subprocess, sys
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from rnnlit import RNN

sizes = st.integers(1, 9)
dtypes = st.sampled_from([np.float32, np.float64])


def _loop_step(P, x, h):
    "The cell's equation with explicit sums, in float64."
    B, H = h.shape
    out = np.zeros((B, H))
    for b in range(B):
        for j in range(H):
            s = float(P['b_h'][j])
            s += sum(float(x[b, i]) * float(P['W_xh'][i, j]) for i in range(x.shape[1]))
            s += sum(float(h[b, k]) * float(P['W_hh'][k, j]) for k in range(H))
            out[b, j] = np.tanh(s)
    return out


@settings(max_examples=40, deadline=None)
@given(n_in=sizes, H=sizes, n_out=sizes, B=sizes, seed=st.integers(0, 2**16), dtype=dtypes)
def test_step_matches_the_equation(n_in, H, n_out, B, seed, dtype):
    rnn = RNN(n_in, H, n_out, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    x, h = rng.standard_normal((B, n_in)), rng.standard_normal((B, H))
    got = rnn.step(x.astype(dtype), h.astype(dtype))
    assert got.dtype == dtype and got.shape == (B, H)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    want = _loop_step(rnn.params, x.astype(dtype), h.astype(dtype))
    np.testing.assert_allclose(got, want, atol=tol, rtol=0)


@settings(max_examples=40, deadline=None)
@given(n_in=sizes, H=sizes, B=sizes, seed=st.integers(0, 2**16), dtype=dtypes,
       id_dtype=st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint16]))
def test_ids_equal_one_hot(n_in, H, B, seed, dtype, id_dtype):
    rnn = RNN(n_in, H, 3, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, n_in, B).astype(id_dtype)
    h = rng.standard_normal((B, H)).astype(dtype)
    one_hot = np.eye(n_in, dtype=dtype)[ids]
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(rnn.step(ids, h), rnn.step(one_hot, h), atol=tol)


def test_zero_state_by_default():
    rnn = RNN(3, 4, 2)
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(rnn.step(x), rnn.step(x, np.zeros((2, 4), np.float32)))


def test_result_has_the_parameters_dtype():
    rnn = RNN(3, 4, 2, dtype=np.float32)
    assert rnn.step(np.ones((2, 3)), np.zeros((2, 4))).dtype == np.float32   # float64 in, cast
    assert RNN(3, 4, 2, dtype=np.float64).step(np.array([0, 1])).dtype == np.float64


def test_initialisation():
    rnn = RNN(50, 40, 30, seed=7, dtype=np.float64)
    P = rnn.params
    assert {k: v.shape for k, v in P.items()} == {'W_xh': (50, 40), 'W_hh': (40, 40), 'b_h': (40,),
                                                  'W_hy': (40, 30), 'b_y': (30,)}
    np.testing.assert_allclose(P['W_hh'] @ P['W_hh'].T, np.eye(40), atol=1e-12)      # orthogonal
    np.testing.assert_allclose(np.linalg.svd(P['W_hh'], compute_uv=False), 1, atol=1e-12)
    assert np.abs(P['W_xh']).max() <= np.sqrt(6 / 90) and np.abs(P['W_hy']).max() <= np.sqrt(6 / 70)
    assert np.abs(P['W_xh']).max() > 0.9 * np.sqrt(6 / 90)       # the whole Glorot range is used
    assert not P['b_h'].any() and not P['b_y'].any()
    assert (rnn.n_in, rnn.n_hidden, rnn.n_out) == (50, 40, 30)


def test_orthogonal_init_is_not_biased_to_a_sign():
    "With the signs of R folded in, the diagonal of Q is symmetric around zero (Mezzadri 2007)."
    diag = np.concatenate([np.diag(RNN(2, 8, 2, seed=s, dtype=np.float64).params['W_hh'])
                           for s in range(300)])
    assert abs(diag.mean()) < 0.05


@pytest.mark.parametrize('x, h, exc, msg', [
    (np.ones((2, 5)), None, ValueError,
     '`x_t`: expected floats of shape (B, n_in) or integer token ids of shape (B,), with n_in = 4; '
     'got float64 of shape (2, 5)'),
    (np.ones((2, 1, 4)), None, ValueError, 'got float64 of shape (2, 1, 4)'),
    (np.array([0.0, 1.0]), None, TypeError,
     'token ids must have an integer dtype; got float64 of shape (2,)'),
    (np.array([[0, 1]]), None, ValueError, 'got integer ids of shape (1, 2)'),
    (np.array([0, 4]), None, ValueError, 'token ids must lie in [0, 4); got ids from 0 to 4'),
    (np.array([-3, 1]), None, ValueError, 'got ids from -3 to 1'),
    (np.array([np.nan, 0, 0, 0])[None], None, ValueError,
     '`x_t`: expected finite values; got 1 NaN'),
    (np.array(['a', 'b']), None, TypeError, 'got an array of dtype <U1'),
    (np.array([0, 1]), np.zeros((2, 5)), ValueError,
     '`h_prev`: expected shape (B, n_hidden) = (2, 3); got (2, 5)'),
    (np.array([0, 1]), np.zeros((2, 3), int), TypeError,
     '`h_prev`: expected floats; got an array of dtype int64'),
    (np.array([0, 1]), np.full((2, 3), np.nan), ValueError,
     '`h_prev`: expected finite values; got 6 NaN'),
])
def test_bad_input_names_argument_expected_and_received(x, h, exc, msg):
    with pytest.raises(exc) as e: RNN(4, 3, 2).step(x, h)
    assert msg in str(e.value)


@pytest.mark.parametrize('args, kw, exc, msg', [
    ((0, 3, 2), {}, ValueError, '`n_in`: expected a positive int; got 0'),
    ((4, -1, 2), {}, ValueError, '`n_hidden`'),
    ((4, 3, 2.0), {}, TypeError, '`n_out`: expected a positive int; got float 2.0'),
    ((4, True, 2), {}, TypeError, '`n_hidden`'),
    ((4, 3, 2), {'dtype': np.float16}, TypeError,
     '`dtype`: expected np.float32 or np.float64; got float16'),
])
def test_bad_constructor_arguments(args, kw, exc, msg):
    with pytest.raises(exc) as e: RNN(*args, **kw)
    assert msg in str(e.value)


def test_import_does_not_import_torch_and_gives_every_method():
    code = ("import sys, rnnlit; assert 'torch' not in sys.modules, 'torch imported'; "
            "print(rnnlit.RNN.step.__doc__)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'One step' in r.stdout


@settings(max_examples=40, deadline=None)
@given(H=st.integers(1, 32), seed=st.integers(0, 2**16), scale=st.floats(0.01, 10))
def test_with_orthogonal_W_hh_only_tanh_shrinks_the_state(H, seed, scale):
    "Chapter 1's pulse: with zero input and bias, h W_hh keeps ||h||; tanh makes it smaller."
    rnn = RNN(1, H, 1, seed=seed, dtype=np.float64)
    h = np.random.default_rng(seed).standard_normal((1, H))
    h *= scale / np.linalg.norm(h)                                    # ||h|| = scale
    a = h @ rnn.params['W_hh']                                        # the pre-activation
    np.testing.assert_allclose(np.linalg.norm(a), np.linalg.norm(h), rtol=1e-12)
    assert np.linalg.norm(rnn.step(np.zeros((1, 1)), h)) < np.linalg.norm(h)
