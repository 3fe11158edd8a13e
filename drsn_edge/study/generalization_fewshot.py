"""Few-shot curve on a simulated second machine: scratch vs new head vs full fine-tune.

The second machine differs from the CWRU rig in everything the simulator lets change: another
bearing (8 larger balls instead of the 6205's 9), another shaft speed (1250 rpm instead of
~1750) and another structural resonance (4.5 kHz), with more broadband noise. Its classes are
the simulator's four (normal, ball, inner race, outer race), so a CWRU parent's classifier has
one matching row (normal) and three new ones.

For each amount of labelled signal per class (1, 3, 10 s: one simulated recording per class,
drawn afresh for every seed) three methods train on the same windows:

* ``scratch``: the same network from a random initialisation (the paper's SGD, lr 0.1, 30 epochs);
* ``head``: the parent's backbone frozen (BatchNorm statistics too), a new classifier, trained with
  the defaults of ``drsn-edge train --init --freeze backbone`` (:data:`.finetune.HEAD`);
* ``finetune``: every layer starts from the parent and learns, with the defaults of
  ``drsn-edge train --init`` (:data:`.finetune.FINETUNE`): the study measures the recipe a user gets.
  ``--fewshot-recipe KEY=VALUE;...`` changes it for the study alone (how the defaults were chosen,
  on development seeds).

With a few seconds there is nothing to spare for a validation split, so every method keeps its
last epoch (a fixed schedule). Two test sets, no window shared with the labelled data: the 10 s
that follow the labelled span of the same bearings (after a one-window gap), the setting of a rig
with one bearing per fault such as CWRU; and three other simulated bearings per class (other
seeds and fault severities) of 10 s each on the same machine, a fault the model has not seen.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from runtime.errors import ConfigError

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("scratch", "head", "finetune")
SECONDS: tuple[float, ...] = (1.0, 3.0, 10.0)
CLASSES: tuple[str, ...] = ("normal", "ball", "inner_race", "outer_race")
RATE = 12000.0
WINDOW = 2048
TRAIN_HOP = 512
TEST_HOP = 1024
TEST_BEARINGS = 3
TEST_SECONDS = 10.0


@dataclass(frozen=True)
class SecondMachine:
    """The simulated target machine (everything that differs from the CWRU rig)."""

    n_balls: int = 8
    ball_diameter_mm: float = 12.0
    pitch_diameter_mm: float = 52.0
    rpm: float = 1250.0
    resonance_hz: float = 4500.0
    noise_std: float = 0.06
    severity: tuple[float, float] = (0.4, 1.0)


@dataclass(frozen=True)
class FewShotPoint:
    method: str
    seconds: float
    seed: int

    @property
    def key(self) -> str:
        return f"{self.method}-{self.seconds:g}s-s{self.seed}"


SCRATCH_EPOCHS = 30
RECIPE_KEYS: tuple[str, ...] = (
    "lr",
    "epochs",
    "hop_divisor",
    "label_smoothing",
    "backbone_lr_scale",
    "adabn_start",
    "augment_noise",
)


@dataclass(frozen=True)
class FewShotSettings:
    parent: str
    #: None: each method's own default (the fine-tuning recipe's epochs, SCRATCH_EPOCHS from scratch)
    epochs: int | None = None
    threads: int = 1
    #: overrides of the fine-tuning recipe (RECIPE_KEYS), for choosing it on development seeds
    recipe: tuple[tuple[str, float | str], ...] = ()

    def finetune_recipe(self, freeze: str = "none") -> Any:
        """The recipe ``drsn-edge train --init`` uses, with this study's overrides."""
        import dataclasses

        from drsn_edge.training.finetune import recipe_for

        base = recipe_for(freeze)
        if freeze == "backbone":
            return base
        typed: dict[str, Any] = {}
        for k, v in self.recipe:
            if k == "augment_noise":
                typed[k] = None if v == "off" else str(v)
            elif k in ("epochs", "hop_divisor"):
                typed[k] = int(float(v))
            else:
                typed[k] = bool(float(v)) if k == "adabn_start" else float(v)
        return dataclasses.replace(base, **typed)

    @property
    def hop(self) -> int:
        """Training hop for every method: the fine-tuning recipe's, so all train on the same windows."""
        return int(self.finetune_recipe().hop(WINDOW))


def parse_recipe(text: str) -> tuple[tuple[str, float | str], ...]:
    """``lr=0.03;hop_divisor=16`` -> (("hop_divisor", 16.0), ("lr", 0.03)); unknown keys are refused.

    Items are separated by ``;`` (a noise spec such as ``augment_noise=gaussian,pink:0..20`` holds
    commas); ``augment_noise`` takes a ``KINDS:LOW..HIGH`` spec or ``off``, every other key a number.
    """
    from drsn_edge.training.augment import NoiseAugment

    out: dict[str, float | str] = {}
    for item in (x.strip() for x in text.split(";") if x.strip()):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in RECIPE_KEYS:
            raise ConfigError(
                f"--fewshot-recipe item {item!r} must be KEY=VALUE with KEY one of {', '.join(RECIPE_KEYS)}"
            )
        if key == "augment_noise":
            if value != "off":
                NoiseAugment.parse(value)  # refused here, before any run, when malformed
            out[key] = value
            continue
        try:
            out[key] = float(value)
        except ValueError as exc:
            raise ConfigError(f"--fewshot-recipe {key}={value!r} is not a number") from exc
    return tuple(sorted(out.items()))


def fewshot_points(
    methods: tuple[str, ...], seconds: tuple[float, ...], seeds: tuple[int, ...]
) -> list[FewShotPoint]:
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ConfigError(f"few-shot methods {bad} are unknown; use {', '.join(METHODS)}")
    return [FewShotPoint(m, s, seed) for seed in seeds for s in seconds for m in methods]


def recording(machine: SecondMachine, condition: str, seconds: float, seed: int) -> np.ndarray:
    """One simulated bearing of the second machine, ``seconds`` long; the seed picks bearing and severity."""
    from runtime.signals.simulator import BearingGeometry, BearingSimulator

    rng = np.random.default_rng([seed, CLASSES.index(condition)])
    severity = 0.0 if condition == "normal" else float(rng.uniform(*machine.severity))
    geometry = BearingGeometry(machine.n_balls, machine.ball_diameter_mm, machine.pitch_diameter_mm)
    sim = BearingSimulator(
        condition,
        severity,
        RATE,
        machine.rpm,
        int(rng.integers(2**31)),
        geometry=geometry,
        resonance_hz=machine.resonance_hz,
        noise_std=machine.noise_std,
    )
    return sim.generate(round(seconds * RATE))


def windows(
    machine: SecondMachine, seconds: float, seeds: list[int], hop: int, start_s: float = 0.0
) -> tuple[Any, int]:
    """Normalised windows of one recording per (class, seed), from ``start_s`` to ``seconds``.

    Returns (WindowSet, recordings). The simulator is a stream, so the span after ``start_s`` of
    a recording is the same bearing, later in time.
    """
    from drsn_edge.data.windows import WindowSet, make_windows
    from runtime.artifact import Normalization
    from runtime.signals.normalize import normalize_windows

    parts = []
    index = 0
    for c, condition in enumerate(CLASSES):
        for seed in seeds:
            signal = recording(machine, condition, seconds, seed)
            x, starts = make_windows(signal, WINDOW, hop, start=round(start_s * RATE))
            n = len(starts)
            parts.append(
                WindowSet(
                    normalize_windows(x, Normalization(kind="zscore")),
                    np.full(n, c, np.int64),
                    np.full(n, index, np.int64),
                    starts,
                )
            )
            index += 1
    return WindowSet.concat(parts, 1, WINDOW), index


def split_data(point: FewShotPoint, machine: SecondMachine, hop: int = TRAIN_HOP) -> tuple[Any, Any]:
    """(splits, other-bearing test windows).

    Train: the first ``seconds`` of one bearing per class (also passed as validation, unused:
    the last epoch is kept). Test, same bearings: the following ``TEST_SECONDS`` of the same
    recordings after a one-window gap, the setting of a rig with one bearing per fault (as CWRU).
    Test, other bearings: ``TEST_BEARINGS`` other simulated bearings per class (other seeds and
    severities) on the same machine, the harder question of a fault the model has not seen.
    """
    from drsn_edge.data.splits import SplitData

    seed = [1000 + point.seed]
    gap = WINDOW / RATE
    total = point.seconds + gap + TEST_SECONDS
    train, n_train = windows(machine, point.seconds, seed, hop)
    later, _ = windows(machine, total, seed, TEST_HOP, start_s=point.seconds + gap)
    other_seeds = [9000 + 10 * point.seed + b for b in range(TEST_BEARINGS)]
    other, n_other = windows(machine, TEST_SECONDS, other_seeds, TEST_HOP)
    summary = {
        "source": "simulated second machine",
        "machine": asdict(machine),
        "labelled_seconds_per_class": point.seconds,
        "train_recordings": n_train,
        "other_bearing_recordings": n_other,
    }
    return SplitData(train, train, later, list(CLASSES), "normal", RATE, WINDOW, hop, summary), other


def run_point(
    settings: FewShotSettings, point: FewShotPoint, machine: SecondMachine, work: Path
) -> dict[str, Any]:
    import torch

    from drsn_edge.training.checkpoint import load_checkpoint
    from drsn_edge.training.datasource import DataSpec
    from drsn_edge.training.finetune import child_from_parent, load_parent
    from drsn_edge.training.trainer import TrainConfig, predict_logits, train
    from runtime.artifact import Normalization

    torch.set_num_threads(settings.threads)
    t0 = time.perf_counter()
    data, other = split_data(point, machine, settings.hop)
    spec = DataSpec(source="synthetic", window=WINDOW, hop=settings.hop, seed=point.seed)
    init = None
    if point.method == "scratch":
        cfg = TrainConfig(
            model="drsn_cw_paper", epochs=settings.epochs or SCRATCH_EPOCHS, seed=point.seed, progress=False
        )
    else:
        parent = load_parent(settings.parent)
        init = child_from_parent(parent, list(CLASSES))
        freeze = "backbone" if point.method == "head" else "none"
        recipe = settings.finetune_recipe(freeze)
        cfg = TrainConfig(
            model=parent.ckpt.model_name,
            epochs=settings.epochs or recipe.epochs,
            seed=point.seed,
            progress=False,
            lr=recipe.lr,
            freeze=freeze,
            parent={**parent.citation(), "freeze": freeze, **init.summary()},
            **recipe.train_config(),
        )
    result = train(data, spec, cfg, work / "runs" / point.key, norm=Normalization(kind="zscore"), init=init)
    model = load_checkpoint(result.last_path).build_model()
    pred, y = predict_logits(model, data.test.x).argmax(1), data.test.y
    pred_o, y_o = predict_logits(model, other.x).argmax(1), other.y
    return {
        **asdict(point),
        "key": point.key,
        "acc": float((pred == y).mean()),
        "recall": {CLASSES[c]: float((pred[y == c] == c).mean()) for c in range(len(CLASSES))},
        "acc_other": float((pred_o == y_o).mean()),
        "recall_other": {CLASSES[c]: float((pred_o[y_o == c] == c).mean()) for c in range(len(CLASSES))},
        "n_train": len(data.train.y),
        "n_test": len(y),
        "n_test_other": len(y_o),
        "n_test_recordings": len(CLASSES),
        "n_other_recordings": int(data.summary["other_bearing_recordings"]),
        "seconds_wall": time.perf_counter() - t0,
    }


def _worker(
    settings: FewShotSettings, point: FewShotPoint, machine: SecondMachine, work: str
) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    return run_point(settings, point, machine, Path(work))


def run_fewshot(
    settings: FewShotSettings,
    points: list[FewShotPoint],
    work: Path,
    workers: int = 1,
    progress: bool = True,
    machine: SecondMachine | None = None,
) -> list[dict[str, Any]]:
    """Run the points not yet in ``work/rows.jsonl``; return the rows of ``points``."""
    from drsn_edge.study.generalization_pool import read_rows, run_pool
    from drsn_edge.training.finetune import load_parent

    machine = machine or SecondMachine()
    parent = load_parent(settings.parent)  # fail before any run when the parent is missing
    work.mkdir(parents=True, exist_ok=True)
    record = {
        **asdict(settings),
        "recipe": asdict(settings.finetune_recipe()),
        "head_recipe": asdict(settings.finetune_recipe("backbone")),
        "parent_weights_sha256": parent.ckpt.metadata.weights_sha256,
        "machine": asdict(machine),
    }
    settings_file = work / "settings.json"
    if settings_file.exists() and json.loads(settings_file.read_text()) != json.loads(json.dumps(record)):
        raise ConfigError(
            f"{work} holds runs made with other settings or another parent ({settings_file}); "
            "use another --work"
        )
    settings_file.write_text(json.dumps(record, indent=1))
    rows_path = work / "rows.jsonl"
    done = {r["key"] for r in read_rows(rows_path)}
    todo = [p for p in points if p.key not in done]

    def write(row: dict[str, Any]) -> None:
        with rows_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    if todo:
        run_pool(
            _worker,
            [(settings, p, machine, str(work)) for p in todo],
            [p.key for p in todo],
            write,
            workers,
            progress,
            "few-shot second machine",
        )
    wanted = {p.key for p in points}
    return [r for r in read_rows(rows_path) if r["key"] in wanted]
