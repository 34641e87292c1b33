"""Exercises for chapter 4: vector calculus."""

import inspect

import numpy as np

from helpers.exercises.core import Exercise, by_hand, matches_value, register

# --- derivatives checked at a precision that nudging cannot reach ----------------------------------------
# The chapter's central differences are right to about 1e-10 (section 4.8) and never better than about
# 1e-11, so the function exercises compare at 1e-12 of the answer's size: only a derivative worked out by
# hand passes. Autograd and sympy are refused too: the exercise is to do what they do.
_AUTOGRAD = "Differentiate by hand; autograd is what you are learning to check."
_NUDGING = "Nudging is the check, not the derivative: derive it by hand."
_BY_MACHINE = {
    "torch.autograd.grad": _AUTOGRAD,
    "torch.autograd.backward": _AUTOGRAD,
    "torch.Tensor.backward": _AUTOGRAD,
    "torch.autograd.functional.jacobian": _AUTOGRAD,
    "torch.autograd.functional.vjp": _AUTOGRAD,
    "torch.func.vjp": _AUTOGRAD,
    "torch.func.jacrev": _AUTOGRAD,
    "sympy.diff": "Differentiate by hand; sympy is the oracle, not the answer.",
    "helpers.calculus.numerical_gradient": _NUDGING,
    "helpers.calculus.numerical_jacobian": _NUDGING,
}
_NUDGERS = {"numerical_gradient", "numerical_jacobian"}  # also the chapter's own cells of those names
TOLERANCE = 1e-12


def _names_used(function) -> set[str]:
    code_objects, names = [getattr(function, "__code__", None)], set()
    while code_objects:
        code = code_objects.pop()
        if code is not None:
            names.update(code.co_names + code.co_freevars)  # globals, and names from an enclosing scope
            code_objects.extend(c for c in code.co_consts if inspect.iscode(c))
    return names


def _as_arrays(value) -> tuple[np.ndarray, ...]:
    parts = value if isinstance(value, tuple) else (value,)
    return tuple(np.asarray(part, dtype=float) for part in parts)


def exact_derivative(reference, make_inputs, trials: int = 25, seed: int = 0):
    """A checker for a derivative (one array, or a tuple of them): agreement with `reference` to 1e-12."""

    def checker(answer) -> None:
        assert callable(answer), f"expected a function, got {type(answer).__name__}"
        nudges = _names_used(answer) & _NUDGERS
        assert not nudges, f"your function calls {nudges.pop()}: nudging is the check; derive it by hand"
        rng = np.random.default_rng(seed)
        for _ in range(trials):
            args = make_inputs(rng)
            want = _as_arrays(reference(*[np.copy(a) for a in args]))
            got = answer(*[np.copy(a) for a in args])
            if got is None:
                raise AssertionError("your function returned None: did you forget `return`?")
            got = _as_arrays(got)
            shapes = ", ".join(str(np.shape(a)) for a in args)
            assert len(got) == len(want), f"return {len(want)} array(s), not {len(got)}"
            for g, w in zip(got, want, strict=True):
                assert g.shape == w.shape, (
                    f"on inputs of shapes {shapes} you return shape {g.shape}, not {w.shape}"
                )
                scale = max(1.0, float(np.abs(w).max(initial=0.0)))
                error = float(np.abs(g - w).max(initial=0.0)) / scale
                assert error <= TOLERANCE, (
                    f"on inputs of shapes {shapes} your answer is off by {error:.1e} of its size"
                    + (" - about what a numerical derivative gets: derive it exactly" if error < 1e-5 else "")
                )

    return by_hand(checker, _BY_MACHINE)


# 4.1 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="4.1",
        title="a gradient by hand",
        checker=matches_value([4.0, 1.0 + np.cos(2.0)], atol=1e-6, what="your gradient"),
        hint="take one partial derivative at a time: for df/dx treat y as a fixed number, for df/dy treat x "
        "as a fixed number. Then put in x = 1, y = 2.",
        solution=np.array([2 * 1.0 * 2.0, 1.0**2 + np.cos(2.0)]),
        wrong=np.array([2.0, 1.0 + np.cos(2.0)]),  # differentiated x^2 y as 2x, dropping the y
        explanation="f(x, y) = x^2 y + sin(y). Holding y fixed, x^2 y is a constant times x^2, so "
        "df/dx = 2xy = 4 at (1, 2). Holding x fixed, x^2 y is a constant times y and sin(y) gives cos(y), "
        "so df/dy = x^2 + cos(y) = 1 + cos(2), about 0.584. The gradient is (4, 0.584).",
    )
)


# 4.2 ----------------------------------------------------------------------------------------------------
def _jacobian(x, y):
    """J of f(x, y) = (x y, x + y^2, sin x): one row per output, one column per input."""
    return np.array([[y, x], [1.0, 2.0 * y], [np.cos(x), 0.0]])


def _point(rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.normal() * 3), float(rng.normal() * 3)


register(
    Exercise(
        key="4.2",
        title="rows are outputs, columns are inputs",
        checker=exact_derivative(_jacobian, _point),
        hint="f has 3 outputs and 2 inputs, so J is 3x2. Row i is the gradient of output i: "
        "(d f_i / dx, d f_i / dy). Check yourself with numerical_jacobian(lambda p: f(*p), [x, y]), but "
        "submit the exact formula: the checker compares to 1e-12, which nudging cannot reach.",
        solution=_jacobian,
        wrong=lambda x, y: _jacobian(x, y).T,  # (2, 3): the transposed convention
        explanation="Row 1: x y changes at rate y with x and x with y. Row 2: x + y^2 gives (1, 2y). Row 3: "
        "sin x gives (cos x, 0). J is (outputs x inputs) = 3x2, so that J @ h, for a small step h in the "
        "plane, is how far the three outputs move.",
    )
)


# 4.3 ----------------------------------------------------------------------------------------------------
def _softplus_3x_derivative(x):
    """d/dx log(1 + exp(3x)) = 3 exp(3x) / (1 + exp(3x)) = 3 sigmoid(3x): outer rate times inner rate."""
    return 3.0 / (1.0 + np.exp(-3.0 * x))


def _some_xs(rng: np.random.Generator) -> tuple[np.ndarray]:
    return (rng.normal(size=int(rng.integers(1, 6))) * 3,)


register(
    Exercise(
        key="4.3",
        title="the chain rule",
        checker=exact_derivative(_softplus_3x_derivative, _some_xs),
        hint="it is outer(inner(x)) with inner(x) = 3x and outer(u) = log(1 + exp(u)). Multiply the outer "
        "derivative, taken at u = 3x, by the inner derivative.",
        solution=_softplus_3x_derivative,
        wrong=lambda x: 1.0 / (1.0 + np.exp(-3.0 * x)),  # forgot the inner derivative, 3
        explanation="outer'(u) = exp(u) / (1 + exp(u)) = sigmoid(u), so the derivative is sigmoid(3x) * 3. "
        "Forgetting the inner rate is the most common chain-rule slip; a numerical check catches it at once.",
    )
)

# 4.4 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="4.4",
        title="Taylor coefficients",
        checker=matches_value([1.0, 1.0, 0.0, -1.0 / 3.0], atol=1e-6, what="your coefficients"),
        hint="the coefficient of x^k is f^(k)(0) / k!. Either differentiate e^x cos x three times, or "
        "multiply the series 1 + x + x^2/2 + x^3/6 and 1 - x^2/2 and keep the terms up to x^3.",
        solution=np.array([1.0, 1.0, 0.0, -1.0 / 3.0]),
        wrong=np.array([1.0, 1.0, 0.0, -2.0]),  # the derivatives f^(k)(0), not divided by k!
        explanation="f(0) = 1, f'(0) = 1, f''(0) = 0 and f'''(0) = -2, so the coefficients f^(k)(0) / k! are "
        "1, 1, 0 and -2/6 = -1/3: e^x cos x = 1 + x - x^3/3 + ... Multiplying the two series gives the "
        "same: the x^3 terms are x^3/6 - x^3/2 = -x^3/3.",
    )
)


# 4.5 ----------------------------------------------------------------------------------------------------
def _grad_mse(w, X, y):
    """The gradient of L(w) = mean((X w - y)^2): (2 / n) X^T (X w - y)."""
    residual = X @ w - y  # (n,)
    return 2.0 / len(y) * X.T @ residual  # (d,)


def _regression(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = int(rng.integers(3, 9)), int(rng.integers(1, 4))
    return rng.normal(size=d), rng.normal(size=(n, d)), rng.normal(size=n)


register(
    Exercise(
        key="4.5",
        title="a gradient that passes the check",
        checker=exact_derivative(_grad_mse, _regression),
        hint="write r = X w - y. Then L = (1/n) sum_i r_i^2, and the chain rule gives dL/dw = (1/n) sum_i "
        "2 r_i x_i, where x_i is row i of X. As matrices: (2 / n) X^T r. Test it with gradient_check before "
        "you submit it.",
        solution=_grad_mse,
        wrong=lambda w, X, y: X.T @ (X @ w - y) / len(y),  # lost the 2 from the square
        explanation="d(r_i^2)/dw = 2 r_i dr_i/dw = 2 r_i x_i, and averaging over the n rows gives "
        "(2/n) X^T (X w - y). Dropping the 2 gives an arrow in the right direction but half the length: "
        "gradient descent would still go downhill, which is why such bugs survive without a gradient check "
        "(its relative error is 0.5).",
    )
)


# 4.6 ----------------------------------------------------------------------------------------------------
def _linear_backward(x, W, grad_y):
    """y = x W^T + b on inputs of shape (..., n): every position is a row; the shared W and b add up."""
    grad_x = grad_y @ W  # (..., m) @ (m, n) -> (..., n)
    n, m = x.shape[-1], grad_y.shape[-1]
    grad_W = grad_y.reshape(-1, m).T @ x.reshape(-1, n)  # (m, n): sum over positions of g x^T
    grad_b = grad_y.reshape(-1, m).sum(axis=0)  # (m,)
    return grad_x, grad_W, grad_b


def _layer_inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, m = (int(k) for k in rng.integers(1, 6, size=2))
    leading = [(), (int(rng.integers(1, 5)),), tuple(int(k) for k in rng.integers(1, 4, size=2))][
        int(rng.integers(3))
    ]
    return rng.normal(size=(*leading, n)), rng.normal(size=(m, n)), rng.normal(size=(*leading, m))


def _transposed_weight_gradient(x, W, grad_y):
    grad_x, _, grad_b = _linear_backward(x, W, grad_y)
    n, m = x.shape[-1], grad_y.shape[-1]
    return grad_x, x.reshape(-1, n).T @ grad_y.reshape(-1, m), grad_b  # (n, m): W's transpose's shape


_LAYER_HELPERS = {"helpers.calculus.linear_vjp": "That is the chapter's own answer; write yours."}
register(
    Exercise(
        key="4.6",
        title="the backward of a linear layer",
        checker=by_hand(exact_derivative(_linear_backward, _layer_inputs), _LAYER_HELPERS),
        hint="for one position, y = W x + b gives dL/dx = W^T g (as a row: g @ W), dL/dW = g x^T and "
        "dL/db = g. W and b are shared by every position of the batch (and of the sequence), so their "
        "gradients are the SUM over positions: flatten the leading axes with reshape(-1, n) first.",
        solution=_linear_backward,
        wrong=_transposed_weight_gradient,
        explanation="dL/dx keeps x's shape and is one matrix product for all positions. W is used at every "
        "position, and a weight used many times collects the sum of what each use contributes - the same "
        "rule that makes a (B, T, C) batch's dL/dW one (m, B*T) @ (B*T, n) product. The same three lines are "
        "the backward of torch.nn.Linear.",
    )
)


# 4.7 ----------------------------------------------------------------------------------------------------
def _softmax_backward(p, grad_p):
    """g^T J for J = diag(p) - p p^T, without building J: p * (g - g . p), row by row."""
    return p * (grad_p - (grad_p * p).sum(axis=-1, keepdims=True))  # (..., C)


def _probabilities_and_gradient(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    C = int(rng.integers(2, 8))
    leading = [(), (int(rng.integers(1, 5)),), tuple(int(k) for k in rng.integers(1, 4, size=2))][
        int(rng.integers(3))
    ]
    z = rng.normal(size=(*leading, C)) * 2
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True), rng.normal(size=(*leading, C))


def _diagonal_only(p, grad_p):
    return grad_p * p * (1 - p)  # the sigmoid's rule, entry by entry: misses every -p_i p_j off the diagonal


_SOFTMAX_HELPERS = {
    "helpers.calculus.softmax_jacobian": "Build the product without forming the C x C matrix."
}
register(
    Exercise(
        key="4.7",
        title="the backward of softmax, without its Jacobian",
        checker=by_hand(exact_derivative(_softmax_backward, _probabilities_and_gradient), _SOFTMAX_HELPERS),
        hint="entry j of g^T J is sum_i g_i p_i (delta_ij - p_j) = p_j g_j - p_j (sum_i g_i p_i). The sum is "
        "one number per row of p: compute it with keepdims=True so that it broadcasts over C.",
        solution=_softmax_backward,
        wrong=_diagonal_only,
        explanation="g^T (diag(p) - p p^T) = p * g - (g . p) p = p * (g - g . p). For a vocabulary of "
        "C = 50,000 tokens this costs about 3C operations per position instead of the C^2 = 2.5e9 of "
        "building the Jacobian: backpropagation never forms a Jacobian it can multiply by instead.",
    )
)

# 4.8 ----------------------------------------------------------------------------------------------------
register(
    Exercise(
        key="4.8",
        title="predict: the rows of the softmax Jacobian",
        checker=matches_value(0.0, atol=1e-6, what="your prediction"),
        hint="row i of J is how p_i moves as each logit moves. What happens to the probabilities if every "
        "logit goes up by the same small amount t?",
        solution=0.0,
        wrong=1.0,  # the probabilities sum to 1, but their rates of change do not
        explanation="Adding t to every logit multiplies every exp(z_j) by exp(t), which the normalisation "
        "divides out: p does not move. That move is J @ (t, t, ..., t) = t * (row sums of J), so every row "
        "sums to 0. (J is symmetric, so the columns do too: the probabilities always sum to 1, so their "
        "changes sum to 0.)",
    )
)
