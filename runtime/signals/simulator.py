"""A physics-based rolling-bearing vibration simulator, fast enough to stream many sensors live.

The model follows the classic description of localised bearing faults (McFadden & Smith;
Randall & Antoni): every time a rolling element strikes a defect, the impact rings a structural
resonance of the housing (a damped sinusoid of a few kHz). Impacts repeat at the bearing's
characteristic frequency (BPFI, BPFO, or twice BSF for a ball that strikes both races), with a
small random slip of each interval, so the envelope spectrum shows the fault frequency and its
harmonics while the raw spectrum shows only the resonance band. Inner-race impacts are
amplitude-modulated by shaft rotation (the defect turns through the load zone once per
revolution); ball impacts by the cage (FTF, the ball circling through the load zone) and by the
ball's spin (alternating inner/outer race contacts). Shaft harmonics, a slowly wandering speed and
broadband noise complete the picture.

The simulator is a stream: :meth:`BearingSimulator.generate` continues exactly where the last
call stopped (shaft phase, ringing resonator, impact schedule, noise sequence), so
``generate(a)`` then ``generate(b)`` equals ``generate(a + b)``. ``condition``, ``severity`` and
``rpm`` may change between calls, which is how the demo makes a machine degrade over time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from runtime.errors import ConfigError

log = logging.getLogger(__name__)

CONDITIONS: tuple[str, ...] = ("normal", "inner_race", "outer_race", "ball")
_ALIASES = {"healthy": "normal", "inner": "inner_race", "outer": "outer_race"}


@dataclass(frozen=True)
class BearingGeometry:
    """Rolling-element bearing dimensions; the default is the SKF 6205 of the CWRU test rig."""

    n_balls: int = 9
    ball_diameter_mm: float = 7.94
    pitch_diameter_mm: float = 39.04
    contact_angle_deg: float = 0.0


SKF_6205 = BearingGeometry()


def bearing_frequencies(rpm: float, geometry: BearingGeometry = SKF_6205) -> dict[str, float]:
    """Shaft, cage (FTF), outer/inner race pass (BPFO/BPFI) and ball spin (BSF) frequencies in Hz.

    ``bsf`` is the ball's spin frequency, ``D / (2 d) * (1 - (d / D * cos a)^2)`` times the shaft
    speed. A ball defect strikes both races once per spin, so its impacts come at ``2 * bsf``;
    that is the number CWRU's bearing table lists as "BSF" (4.7135 x shaft speed for the 6205).
    """
    if rpm <= 0:
        raise ConfigError(f"shaft speed must be positive, got {rpm} rpm")
    shaft = rpm / 60.0
    cos_angle = math.cos(math.radians(geometry.contact_angle_deg))
    ratio = geometry.ball_diameter_mm / geometry.pitch_diameter_mm * cos_angle
    return {
        "shaft": shaft,
        "ftf": shaft / 2 * (1 - ratio),
        "bpfo": geometry.n_balls * shaft / 2 * (1 - ratio),
        "bpfi": geometry.n_balls * shaft / 2 * (1 + ratio),
        "bsf": geometry.pitch_diameter_mm / (2 * geometry.ball_diameter_mm) * shaft * (1 - ratio**2),
    }


def canonical_condition(name: str) -> str:
    """Map a condition name (or an alias such as ``inner``) to one of :data:`CONDITIONS`."""
    key = _ALIASES.get(str(name).strip().lower(), str(name).strip().lower())
    if key not in CONDITIONS:
        raise ConfigError(f"unknown bearing condition {name!r}; choose one of {', '.join(CONDITIONS)}")
    return key


class _ImpactSchedule:
    """The impact times of one fault type, in fault cycles (shaft cycles times the fault order).

    Targets are drawn in fixed blocks from the fault's own random stream, so the schedule does not
    depend on how the caller chunks the signal.
    """

    _BLOCK = 64

    def __init__(self, rng: np.random.Generator, slip: float, jitter: float) -> None:
        self._rng, self._slip, self._jitter = rng, slip, jitter
        self._targets = np.empty(0)
        self._gains = np.empty(0)
        self._count = np.empty(0, dtype=np.int64)
        self._next_count = 0

    def take(self, start: float, stop: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Impacts with target in ``(start, stop]``: (targets, gain jitters, running impact numbers)."""
        if not len(self._targets) or self._targets[-1] <= start:
            self._extend(anchor=start)  # first use, or the fault was inactive for a while
        while self._targets[-1] <= stop:
            self._extend(anchor=None)
        lo = int(np.searchsorted(self._targets, start, side="right"))
        hi = int(np.searchsorted(self._targets, stop, side="right"))
        taken = self._targets[lo:hi], self._gains[lo:hi], self._count[lo:hi]
        self._targets, self._gains, self._count = self._targets[hi:], self._gains[hi:], self._count[hi:]
        return taken

    def _extend(self, anchor: float | None) -> None:
        steps = np.maximum(1.0 + self._slip * self._rng.standard_normal(self._BLOCK), 0.5)
        gains = np.maximum(1.0 + self._jitter * self._rng.standard_normal(self._BLOCK), 0.0)
        if anchor is not None:  # restart one random fraction of a cycle after `anchor`
            steps[0] = self._rng.uniform()
            base = anchor
            self._targets, self._gains = np.empty(0), np.empty(0)
            self._count = np.empty(0, dtype=np.int64)
        else:
            base = float(self._targets[-1])
        counts = np.arange(self._next_count, self._next_count + self._BLOCK)
        self._next_count += self._BLOCK
        self._targets = np.concatenate([self._targets, base + np.cumsum(steps)])
        self._gains = np.concatenate([self._gains, gains])
        self._count = np.concatenate([self._count, counts])


class _SpeedProfile:
    """Shaft phase as a function of sample index, with a slowly wandering speed.

    Speed is set at control points every ``interval`` samples (an AR(1) walk around the nominal
    speed) and varies linearly between them, so the phase is an exact quadratic inside each
    interval: evaluating it is a few vector operations, and any sample's phase is the same
    whichever call computes it.
    """

    _CORRELATION = 0.9  # per control interval: the speed wanders over about half a second

    def __init__(self, rng: np.random.Generator, sample_rate: float, jitter: float, rpm: float) -> None:
        self._rng, self._jitter, self.rpm = rng, jitter, rpm
        self._fs = sample_rate
        self._interval = max(1, round(0.05 * sample_rate))
        self._base = 0  # control point index of _freq[0]
        self._deviation = jitter * rng.standard_normal()
        self._freq = np.array([self._next_frequency()])
        self._phase = np.array([rng.uniform()])  # shaft cycles at each control point

    def phase(self, first: int, count: int) -> np.ndarray:
        """Shaft phase in cycles of samples ``first .. first + count - 1`` (``first`` may be -1)."""
        idx = np.arange(first, first + count, dtype=np.int64)
        k = np.maximum(idx // self._interval, 0)
        self._ensure(int(k[-1]) + 1)
        j = k - self._base
        f0, f1 = self._freq[j], self._freq[j + 1]
        dt = (idx - k * self._interval) / self._fs
        span = self._interval / self._fs
        phase: np.ndarray = self._phase[j] + f0 * dt + 0.5 * (f1 - f0) / span * dt * dt
        return phase

    def forget_before(self, sample: int) -> None:
        """Drop control points older than ``sample`` so a stream of days keeps constant memory."""
        keep_from = max(sample // self._interval - 1, 0) - self._base
        if keep_from > 256:
            self._freq, self._phase = self._freq[keep_from:], self._phase[keep_from:]
            self._base += keep_from

    def _ensure(self, last: int) -> None:
        span = self._interval / self._fs
        new_f, new_p = [], []
        f, p = float(self._freq[-1]), float(self._phase[-1])
        for _ in range(last - (self._base + len(self._freq) - 1)):
            nf = self._next_frequency()
            p, f = p + 0.5 * (f + nf) * span, nf
            new_f.append(f)
            new_p.append(p)
        if new_f:
            self._freq = np.concatenate([self._freq, new_f])
            self._phase = np.concatenate([self._phase, new_p])

    def _next_frequency(self) -> float:
        rho = self._CORRELATION
        innovation = math.sqrt(1 - rho * rho) * self._jitter * self._rng.standard_normal()
        self._deviation = rho * self._deviation + innovation
        return self.rpm / 60.0 * (1.0 + self._deviation)


#: Per fault: (frequency that paces the impacts, impacts per cycle of it, impact amplitude at severity 1).
#: A ball defect strikes the inner and the outer race once per spin, hence twice per BSF cycle.
_FAULTS: dict[str, tuple[str, float, float]] = {
    "inner_race": ("bpfi", 1.0, 1.0),
    "outer_race": ("bpfo", 1.0, 1.5),
    "ball": ("bsf", 2.0, 0.6),
}
_HARMONIC_GAINS = (1.0, 0.5, 0.25)  # shaft 1x, 2x, 3x relative to shaft_amplitude
_SPIN_CONTACT_GAINS = (1.0, 0.5)  # a ball defect hits the inner race harder than the outer


class BearingSimulator:
    """A continuous vibration stream (in g) from one bearing in a given condition.

    ``severity`` in [0, 1] scales the fault impacts (0 looks healthy); ``slip`` is the relative
    standard deviation of each impact interval and ``speed_jitter`` that of the shaft speed, both
    about 1% on real machines. ``resonance_hz`` defaults to 3 kHz (or a quarter of the sample
    rate when that is lower).
    """

    def __init__(
        self,
        condition: str = "normal",
        severity: float = 1.0,
        sample_rate: float = 12000,
        rpm: float = 1797,
        seed: int = 0,
        *,
        geometry: BearingGeometry = SKF_6205,
        resonance_hz: float | None = None,
        damping: float = 0.05,
        noise_std: float = 0.04,
        shaft_amplitude: float = 0.03,
        impact_amplitude: float = 1.0,
        slip: float = 0.01,
        speed_jitter: float = 0.01,
        modulation_depth: float = 0.8,
    ) -> None:
        if sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.geometry = geometry
        self.noise_std, self.shaft_amplitude = noise_std, shaft_amplitude
        self.impact_amplitude, self.modulation_depth = impact_amplitude, modulation_depth
        per_rev = bearing_frequencies(60.0, geometry)  # at 1 rev/s the frequencies are orders
        self._orders = {name: per_rev[freq] * per for name, (freq, per, _) in _FAULTS.items()}
        self._cage_order = per_rev["ftf"]
        self._b, self._a = _resonator(self.sample_rate, resonance_hz, damping)
        noise_ss, speed_ss, init_ss, *fault_ss = np.random.SeedSequence(seed).spawn(3 + len(_FAULTS))
        self._noise_rng = np.random.default_rng(noise_ss)
        self._speed = _SpeedProfile(np.random.default_rng(speed_ss), self.sample_rate, speed_jitter,
                                    float(rpm))
        self._harmonic_phases = np.random.default_rng(init_ss).uniform(size=len(_HARMONIC_GAINS))
        self._schedules = {name: _ImpactSchedule(np.random.default_rng(ss), slip, jitter=0.1)
                           for name, ss in zip(_FAULTS, fault_ss, strict=True)}
        self._zi = np.zeros(2)
        self._carry = 0.0
        self._sample = 0
        self.condition = condition
        self.severity = severity
        self.rpm = rpm

    @property
    def condition(self) -> str:
        """One of :data:`CONDITIONS`; changing it takes effect at the next generated sample."""
        return self._condition

    @condition.setter
    def condition(self, value: str) -> None:
        self._condition = canonical_condition(value)

    @property
    def severity(self) -> float:
        """Fault strength in [0, 1]; 0 removes the fault signature."""
        return self._severity

    @severity.setter
    def severity(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"severity must be in [0, 1], got {value}")
        self._severity = float(value)

    @property
    def rpm(self) -> float:
        """Nominal shaft speed; a change reaches the shaft within about 0.1 s, like a real drive."""
        return self._speed.rpm

    @rpm.setter
    def rpm(self, value: float) -> None:
        if not float(value) > 0:
            raise ConfigError(f"rpm must be positive, got {value}")
        self._speed.rpm = float(value)

    @property
    def samples_generated(self) -> int:
        """Samples produced so far (the stream's clock, in samples)."""
        return self._sample

    def frequencies(self) -> dict[str, float]:
        """The characteristic frequencies at the current nominal speed."""
        return bearing_frequencies(self.rpm, self.geometry)

    def generate(self, n: int) -> np.ndarray:
        """The next ``n`` samples as float32, continuing the stream seamlessly."""
        from scipy.signal import lfilter

        if n < 0:
            raise ConfigError(f"cannot generate a negative number of samples ({n})")
        theta = self._speed.phase(self._sample - 1, n + 1)  # previous sample first: impacts use its phase
        out = self.noise_std * self._noise_rng.standard_normal(n)
        for k, (gain, phase) in enumerate(zip(_HARMONIC_GAINS, self._harmonic_phases, strict=True), start=1):
            out += self.shaft_amplitude * gain * np.sin(2 * np.pi * (k * theta[1:] + phase))
        excitation = self._excitation(theta, n)
        if excitation.any() or self._zi.any():
            ring, self._zi = lfilter(self._b, self._a, excitation, zi=self._zi)
            out += ring
        self._sample += n
        self._speed.forget_before(self._sample)
        return out.astype(np.float32)

    def _excitation(self, theta: np.ndarray, n: int) -> np.ndarray:
        """Unit-impulse train of this chunk's impacts, each split over two samples for sub-sample timing."""
        excitation = np.zeros(n + 1)
        excitation[0] = self._carry
        if self._condition != "normal" and self._severity > 0 and n > 0:
            order = self._orders[self._condition]
            phi = order * theta
            targets, gains, counts = self._schedules[self._condition].take(float(phi[0]), float(phi[-1]))
            j = np.searchsorted(phi, targets, side="left")
            frac = (targets - phi[j - 1]) / (phi[j] - phi[j - 1])
            amps = (self._severity * self.impact_amplitude * _FAULTS[self._condition][2] * gains
                    * self._modulation(targets / order, counts))
            np.add.at(excitation, j - 1, amps * (1 - frac))
            np.add.at(excitation, j, amps * frac)
        self._carry = float(excitation[n])
        return excitation[:n]

    def _modulation(self, shaft_cycles: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Impact gains from the load zone: where the defect (or the ball) is when it strikes."""
        depth = self.modulation_depth
        if self._condition == "inner_race":
            gain: np.ndarray = (1 - depth) + depth * 0.5 * (1 + np.cos(2 * np.pi * shaft_cycles))
            return gain
        if self._condition == "ball":
            cage_cycles = self._cage_order * shaft_cycles
            cage: np.ndarray = (1 - depth) + depth * 0.5 * (1 + np.cos(2 * np.pi * cage_cycles))
            spin: np.ndarray = np.asarray(_SPIN_CONTACT_GAINS)[counts % 2]
            product: np.ndarray = cage * spin
            return product
        return np.ones_like(shaft_cycles)


def _resonator(
    sample_rate: float, resonance_hz: float | None, damping: float
) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole filter whose impulse response is a damped sinusoid of peak ~1 at the resonance."""
    freq = min(3000.0, sample_rate / 4) if resonance_hz is None else float(resonance_hz)
    if not 0 < freq < 0.45 * sample_rate:
        raise ConfigError(
            f"resonance {freq:g} Hz must lie below 0.45 x the sample rate ({sample_rate:g} Hz); "
            "lower resonance_hz"
        )
    if not 0 < damping < 1:
        raise ConfigError(f"damping ratio must be in (0, 1), got {damping}")
    wn = 2 * np.pi * freq / sample_rate
    r = math.exp(-damping * wn)
    wd = wn * math.sqrt(1 - damping * damping)
    return np.array([math.sin(wd)]), np.array([1.0, -2 * r * math.cos(wd), r * r])
