"""Rolling-bearing kinematics: the fault frequencies an analyst looks for, from the geometry.

A localised defect is struck once per pass of a rolling element, so each kind of defect repeats
at a rate fixed by the bearing's geometry and the shaft speed (Harris, *Rolling Bearing
Analysis*; Randall & Antoni 2011, eq. 1-4), for a stationary outer race:

- FTF  (cage)       = f_s / 2 * (1 - r)                with r = d / D * cos(alpha)
- BPFO (outer race) = n * f_s / 2 * (1 - r)
- BPFI (inner race) = n * f_s / 2 * (1 + r)
- BSF  (ball spin)  = D / (2 d) * f_s * (1 - r**2)

``BSF`` here is the textbook spin frequency. A ball defect touches both races once per spin, so
its impacts come at ``2 * BSF``; CWRU's bearing table lists that ``2 * BSF`` under the name "BSF"
(4.7135 x shaft speed for the 6205), which is why the envelope search looks at both.

The catalogue holds bearings whose geometry has a public source, named in each entry. Geometry
for an entry taken from general catalogue data (ball count and size, pitch diameter as the mean of
bore and outside diameter) is marked as approximate: the frequencies are then good to a few
percent, and a user with the maker's data sheet should give the numbers instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime.errors import ConfigError

#: The fault types the diagnostics name, in the order reports list them.
FAULT_TYPES: tuple[str, ...] = ("outer_race", "inner_race", "ball", "cage")


@dataclass(frozen=True)
class Bearing:
    """One bearing's geometry; :meth:`frequencies` gives its fault frequencies at a speed."""

    name: str
    n_elements: int
    element_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0
    source: str = "given by the user"

    def __post_init__(self) -> None:
        check_geometry(
            self.n_elements,
            self.element_diameter_mm,
            self.pitch_diameter_mm,
            self.contact_angle_deg,
            self.name,
        )

    @property
    def ratio(self) -> float:
        """``d / D * cos(alpha)``, the number every fault frequency depends on."""
        cos_angle = math.cos(math.radians(self.contact_angle_deg))
        return self.element_diameter_mm / self.pitch_diameter_mm * cos_angle

    def orders(self) -> FaultFrequencies:
        """The fault frequencies as multiples of the shaft speed (at 60 rpm they are in Hz)."""
        return self.frequencies(60.0)

    def frequencies(self, rpm: float | None) -> FaultFrequencies:
        """Shaft, FTF, BPFO, BPFI and BSF in Hz at ``rpm``; a missing or non-positive speed is an error."""
        shaft = shaft_hz(rpm)
        r = self.ratio
        return FaultFrequencies(
            shaft=shaft,
            ftf=shaft / 2 * (1 - r),
            bpfo=self.n_elements * shaft / 2 * (1 - r),
            bpfi=self.n_elements * shaft / 2 * (1 + r),
            bsf=self.pitch_diameter_mm / (2 * self.element_diameter_mm) * shaft * (1 - r * r),
        )


@dataclass(frozen=True)
class FaultFrequencies:
    """Characteristic frequencies in Hz at one shaft speed."""

    shaft: float
    ftf: float
    bpfo: float
    bpfi: float
    bsf: float

    def of(self, fault: str) -> float:
        """The frequency that paces impacts of ``fault`` (one of :data:`FAULT_TYPES`)."""
        key = {"outer_race": "bpfo", "inner_race": "bpfi", "ball": "bsf", "cage": "ftf"}.get(fault)
        if key is None:
            raise ConfigError(f"unknown fault type {fault!r}; choose one of {', '.join(FAULT_TYPES)}")
        value: float = getattr(self, key)
        return value

    def as_dict(self) -> dict[str, float]:
        return {"shaft": self.shaft, "ftf": self.ftf, "bpfo": self.bpfo, "bpfi": self.bpfi, "bsf": self.bsf}


def shaft_hz(rpm: float | None) -> float:
    """Shaft speed in Hz; the envelope method cannot work without a positive, finite speed."""
    if rpm is None:
        raise ConfigError(
            "the shaft speed is missing; give it in rpm (e.g. --rpm 1797 or `rpm:` in the config)"
        )
    try:
        value = float(rpm)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"shaft speed {rpm!r} is not a number; give it in rpm, e.g. 1797") from exc
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"shaft speed must be a positive number of rpm, got {rpm!r}; give the running speed"
        )
    return value / 60.0


def check_geometry(n: Any, d: Any, pitch: Any, angle: Any, name: str = "bearing") -> None:
    """Reject geometry no bearing can have, naming the number at fault and the rule it breaks."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 3:
        raise ConfigError(f"{name}: number of rolling elements must be a whole number >= 3, got {n!r}")
    for label, value in (("element diameter", d), ("pitch diameter", pitch)):
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name}: {label} must be a positive number of mm, got {value!r}")
    if not isinstance(angle, (int, float)) or not math.isfinite(angle) or not 0 <= angle < 90:
        raise ConfigError(f"{name}: contact angle must be in [0, 90) degrees, got {angle!r}")
    if d >= pitch:
        raise ConfigError(
            f"{name}: element diameter {d} mm must be smaller than the pitch diameter {pitch} mm; "
            "the pitch diameter is the circle through the element centres (about (bore + OD) / 2)"
        )
    if n * d >= math.pi * pitch:
        raise ConfigError(
            f"{name}: {n} elements of {d} mm do not fit on a {pitch} mm pitch circle "
            f"(n x d = {n * d:g} mm > pi x D = {math.pi * pitch:.1f} mm); check the numbers"
        )


_CWRU = "CWRU Bearing Data Center, bearing information page (inch dimensions converted to mm)"
_APPROX = (
    "ball count and size from common maker data; pitch diameter approximated as (bore + OD) / 2, "
    "so frequencies are good to a few percent"
)

#: name -> geometry. Aliases below map the names people type to these entries.
CATALOGUE: dict[str, Bearing] = {
    b.name: b
    for b in (
        Bearing(
            "SKF 6205-2RS JEM", 9, 7.94, 39.04, 0.0, f"{_CWRU}: drive end, 0.3126 in balls, 1.537 in pitch"
        ),
        Bearing(
            "SKF 6203-2RS JEM", 8, 6.746, 28.50, 0.0, f"{_CWRU}: fan end, 0.2656 in balls, 1.122 in pitch"
        ),
        Bearing("6204", 8, 7.938, 33.5, 0.0, _APPROX),
        Bearing("6206", 9, 9.525, 46.0, 0.0, _APPROX),
        Bearing(
            "FAG 6203", 8, 6.75, 28.55, 0.0, "Paderborn University bearing data set (Lessmeier et al. 2016)"
        ),
        Bearing("LDK UER204", 8, 7.92, 34.55, 0.0, "XJTU-SY bearing data set (Wang et al. 2020)"),
        Bearing(
            "Rexnord ZA-2115",
            16,
            8.407,
            71.501,
            15.17,
            "IMS/NASA bearing data set readme (Qiu et al. 2006): 0.331 in rollers, 2.815 in pitch, 15.17 deg",
        ),
        Bearing(
            "MFPT NICE", 8, 5.969, 31.623, 0.0, "MFPT Society fault data set: 0.235 in balls, 1.245 in pitch"
        ),
        Bearing(
            "MB ER-16K",
            9,
            7.9375,
            38.50,
            0.0,
            "Curtin University bearing fault data readme (Forbes 2012, SpectraQuest Machinery Fault "
            "Simulator): 9 balls, 7.9375 mm, 38.50 mm pitch; BPFO 3.572, BPFI 5.428, FTF 0.3969, BSF 2.32 "
            "x shaft speed",
        ),
    )
}
_ALIASES = {
    "6205": "SKF 6205-2RS JEM",
    "6205-2rs": "SKF 6205-2RS JEM",
    "skf 6205": "SKF 6205-2RS JEM",
    "6203": "SKF 6203-2RS JEM",
    "6203-2rs": "SKF 6203-2RS JEM",
    "skf 6203": "SKF 6203-2RS JEM",
    "cwru-de": "SKF 6205-2RS JEM",
    "cwru-fe": "SKF 6203-2RS JEM",
    "za-2115": "Rexnord ZA-2115",
    "uer204": "LDK UER204",
    "nice": "MFPT NICE",
    "er16k": "MB ER-16K",
    "er-16k": "MB ER-16K",
}


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def lookup_bearing(name: str) -> Bearing:
    """A catalogue entry by name or alias (case-insensitive); an unknown name lists the catalogue."""
    wanted = _key(str(name))
    for entry in CATALOGUE.values():
        if _key(entry.name) == wanted:
            return entry
    if wanted in _ALIASES:
        return CATALOGUE[_ALIASES[wanted]]
    names = ", ".join(CATALOGUE) + "; aliases: " + ", ".join(sorted(_ALIASES))
    raise ConfigError(
        f"unknown bearing {name!r}; the catalogue holds {names}. Or give the geometry: "
        "n_elements, element_diameter_mm, pitch_diameter_mm, contact_angle_deg"
    )


_GEOMETRY_KEYS = ("n_elements", "element_diameter_mm", "pitch_diameter_mm", "contact_angle_deg")


def bearing_from(spec: str | Mapping[str, Any] | Bearing) -> Bearing:
    """A bearing from a catalogue name, or from a mapping of its geometry (the config's two forms)."""
    if isinstance(spec, Bearing):
        return spec
    if isinstance(spec, str):
        return lookup_bearing(spec)
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"bearing must be a catalogue name or a geometry mapping, got {type(spec).__name__}"
        )
    unknown = sorted(set(spec) - set(_GEOMETRY_KEYS) - {"name", "source"})
    missing = [k for k in _GEOMETRY_KEYS[:3] if k not in spec]
    if unknown or missing:
        raise ConfigError(
            f"bearing geometry {dict(spec)}: unknown keys {unknown}, missing {missing}; "
            f"give {', '.join(_GEOMETRY_KEYS)} (the angle defaults to 0)"
        )
    return Bearing(
        name=str(spec.get("name", "custom")),
        n_elements=spec["n_elements"],
        element_diameter_mm=spec["element_diameter_mm"],
        pitch_diameter_mm=spec["pitch_diameter_mm"],
        contact_angle_deg=spec.get("contact_angle_deg", 0.0),
        source=str(spec.get("source", "given by the user")),
    )
