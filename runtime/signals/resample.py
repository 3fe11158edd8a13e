"""Change a signal's sample rate, in one shot (training data) or chunk by chunk (the daemon).

Both paths use the same anti-aliasing filter: the Kaiser-windowed FIR that
:func:`scipy.signal.resample_poly` designs for a rational ratio ``up / down``. The one-shot
:func:`resample` compensates the filter's delay (output sample 0 lines up with input sample 0);
the streaming :class:`StreamResampler` is causal, so its output is the one-shot polyphase
filter's output without that compensation, delayed by :attr:`StreamResampler.delay` output
samples. A model sees windows, not absolute time, so the constant delay does not matter on the
device; what matters is that a sensor's stream is filtered as one continuous signal however the
transport happens to chunk it.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from runtime.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Largest ``up`` or ``down`` of the rational approximation; keeps the filter short.
MAX_DENOMINATOR = 1000
#: Relative error of the rational approximation above which a warning is logged.
RATIO_TOLERANCE = 1e-4
_KAISER_BETA = 5.0


def rational_ratio(
    from_rate: float, to_rate: float, max_denominator: int = MAX_DENOMINATOR
) -> tuple[int, int]:
    """``(up, down)``, coprime, with ``up / down`` close to ``to_rate / from_rate``."""
    if not (from_rate > 0 and to_rate > 0 and np.isfinite(from_rate) and np.isfinite(to_rate)):
        raise ConfigError(f"sample rates must be positive and finite, got {from_rate} -> {to_rate}")
    exact = Fraction(to_rate / from_rate)
    approx = exact.limit_denominator(max_denominator)
    if approx.numerator == 0 or approx.numerator > max_denominator:
        raise ConfigError(
            f"cannot resample {from_rate:g} Hz -> {to_rate:g} Hz with factors <= {max_denominator}; "
            "resample in two steps or choose rates with a simpler ratio"
        )
    error = abs(float(approx) / float(exact) - 1.0)
    if error > RATIO_TOLERANCE:
        log.warning("resampling %g -> %g Hz uses ratio %s (%.3g%% off)",
                    from_rate, to_rate, approx, 100 * error)
    return approx.numerator, approx.denominator


def design_filter(up: int, down: int) -> np.ndarray:
    """The anti-aliasing FIR of :func:`scipy.signal.resample_poly` for ``up / down`` (gain ``up``).

    Equal rates need no filter: a single unit tap passes the stream through unchanged.
    """
    from scipy.signal import firwin

    if up == down:
        return np.ones(1)

    max_rate = max(up, down)
    half_len = 10 * max_rate
    taps = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", _KAISER_BETA))
    return np.asarray(taps * up, dtype=np.float64)


def resample(x: np.ndarray, from_rate: float, to_rate: float) -> np.ndarray:
    """Resample along the last axis and return float32 (a copy even when the rates are equal).

    The output length is ``ceil(n * up / down)``, the same as scipy's ``resample_poly``.
    """
    from scipy.signal import resample_poly

    arr = np.asarray(x, dtype=np.float64)
    if arr.shape[-1] == 0:
        raise DataError("cannot resample an empty signal; check the recording")
    if from_rate == to_rate:
        return arr.astype(np.float32)
    up, down = rational_ratio(from_rate, to_rate)
    if up == down:
        return arr.astype(np.float32)
    out = resample_poly(arr, up, down, axis=-1, window=("kaiser", _KAISER_BETA))
    return np.asarray(out, dtype=np.float32)


class StreamResampler:
    """Causal polyphase resampler that keeps its filter state between chunks.

    Feed chunks of shape ``(..., n)`` (one sensor, or many sensors stacked on leading axes,
    all resampled in one vectorised pass); each call returns every output sample whose newest
    input has arrived. The concatenated output equals ``scipy.signal.upfirdn(filter, x, up, down)``
    of the whole stream, whatever the chunk sizes.
    """

    def __init__(self, from_rate: float, to_rate: float) -> None:
        self.from_rate = float(from_rate)
        self.to_rate = float(to_rate)
        self.up, self.down = rational_ratio(from_rate, to_rate)
        self.filter = design_filter(self.up, self.down)
        taps = -(-len(self.filter) // self.up)  # input samples each output depends on
        padded = np.zeros(taps * self.up)
        padded[: len(self.filter)] = self.filter
        # phase p's taps, newest input last, so that a window of inputs dot product gives the output
        self._phases = padded.reshape(taps, self.up).T[:, ::-1].copy()
        self._taps = taps
        self.reset()

    @property
    def delay(self) -> float:
        """Group delay of the filter in output samples (the lag behind one-shot :func:`resample`)."""
        return (len(self.filter) - 1) / 2 / self.down

    def reset(self) -> None:
        """Forget all history, e.g. after a gap in the sensor stream."""
        self._history: np.ndarray | None = None
        self._consumed = 0  # input samples seen so far
        self._produced = 0  # output samples emitted so far

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Filter the next chunk of input and return the output samples it completes, as float32."""
        x = np.asarray(chunk, dtype=np.float64)
        history = self._start(x.shape[:-1])
        n = x.shape[-1]
        total = self._consumed + n
        end = (total * self.up - 1) // self.down + 1 if total else 0  # outputs whose inputs all arrived
        count = end - self._produced
        out = np.empty((*x.shape[:-1], count), dtype=np.float64)
        buffer = np.concatenate([history, x], axis=-1)
        if count > 0:
            windows = sliding_window_view(buffer, self._taps, axis=-1)
            for r in range(min(self.up, count)):
                self._fill_phase(out, windows, r, count)
        self._history = buffer[..., buffer.shape[-1] - (self._taps - 1) :].copy()
        self._consumed, self._produced = total, end
        return out.astype(np.float32)

    def _start(self, lead: tuple[int, ...]) -> np.ndarray:
        if self._history is None:
            self._history = np.zeros((*lead, self._taps - 1))
        elif self._history.shape[:-1] != lead:
            raise DataError(
                f"stream resampler fed chunks of leading shape {lead} after {self._history.shape[:-1]}; "
                "use one resampler per stream layout or call reset()"
            )
        return self._history

    def _fill_phase(self, out: np.ndarray, windows: np.ndarray, r: int, count: int) -> None:
        """Outputs ``r, r + up, ...`` of this call share one polyphase branch: one strided matmul."""
        m0 = self._produced + r
        phase = (m0 * self.down) % self.up
        first = (m0 * self.down) // self.up - self._consumed  # window index of output m0's newest input
        k = len(range(r, count, self.up))
        rows = windows[..., first : first + (k - 1) * self.down + 1 : self.down, :]
        out[..., r :: self.up] = rows @ self._phases[phase]
