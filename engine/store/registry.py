"""What the pages can open, in one place: checkpoints by model kind, shipped (checkpoints/, titled
by manifest.json) and written by training runs; the runs a page started; what a run folder holds
for display (loss records, preview image) and the stored measurements of shipped models.

Model kinds (meta["model"]["kind"]): "ncsn_unet" (MNIST NCSN and its single-σ DSM baseline),
"tutorial_unet" (the score-SDE tutorial model), "sde_mlp2d" (time-conditional 2D scores), "mlp2d"
(noise-conditional 2D scores, written by the Train page's runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.paths import CHECKPOINTS, MANIFEST, default_runs_root
from engine.store.checkpoints import CheckpointError, read_meta
from engine.store.runs import RunInfo, read_json, read_metrics, run_checkpoints

SDE_MNIST_METRICS = CHECKPOINTS / "sde_mnist_metrics.json"


@dataclass(frozen=True)
class Checkpoint:
    label: str
    path: str          # NAME (without suffix), what load_model takes
    kind: str          # model kind
    objective: str
    shipped: bool


def read_manifest(path: Path | None = None) -> dict:
    data = read_json(Path(MANIFEST if path is None else path), {})
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), dict):
        return {"checkpoints": {}}
    return data


def _kind(meta: dict) -> str:
    return (meta.get("model") or {}).get("kind", "")


def shipped(kind: str, folder: Path | None = None) -> list[Checkpoint]:
    """The checkpoints of one model kind in checkpoints/ (every readable NAME.json there, so a
    model trained with --out checkpoints/NAME shows too), by file name; the label is the model's
    own title, else its manifest title, else its name."""
    folder = Path(CHECKPOINTS if folder is None else folder)
    titles = {entry.get("file", name): entry.get("title")
              for name, entry in read_manifest(folder / MANIFEST.name)["checkpoints"].items()}
    out = []
    for p in sorted(folder.glob("*.json")):
        try:
            meta = read_meta(p.with_suffix(""))
        except CheckpointError:
            continue  # the manifest, metric files, foreign JSON
        if _kind(meta) == kind:
            out.append(Checkpoint(meta.get("title") or titles.get(p.stem) or p.stem,
                                  str(p.with_suffix("")), kind, meta.get("objective", ""), True))
    return out


def image_runs(runs_root=None) -> list[Checkpoint]:
    """MNIST NCSN/DSM checkpoints of training runs (finished or not), newest first."""
    out = []
    for d, meta in run_checkpoints(runs_root or default_runs_root()):
        if _kind(meta) == "ncsn_unet":
            out.append(Checkpoint(f"run {d.name} (step {meta.get('step', '?')}, {meta.get('objective')})",
                                  str(d / "model"), "ncsn_unet", meta.get("objective", "ncsn"), False))
    return out


def score2d_runs(runs_root=None) -> dict[str, str]:
    """{checkpoint path: label} of 2D score runs on a Gaussian mixture (the Train page's), newest
    checkpoint first; unfinished runs say their state."""
    found = []
    for d, meta in run_checkpoints(runs_root or default_runs_root()):
        target = meta.get("target") or {}
        if meta.get("task") != "score2d" or target.get("data") != "mixture":
            continue
        weights = ", ".join(f"{v:.2f}" for v in target.get("weights") or [])
        label = (f"{meta.get('objective', '?').upper()} · {meta.get('steps')} steps · weights "
                 f"{weights} · {d.name[:15]}"
                 + ("" if meta.get("state") == "finished" else f" ({meta.get('state')})"))
        found.append((modified(d / "model"), str(d / "model"), label))
    return {path: label for _, path, label in sorted(found, reverse=True)}


def sde2d_models() -> dict[str, str]:
    """{label: path} of the shipped time-conditional 2D scores (the SDE page's likelihood maps)."""
    return {c.label: c.path for c in shipped("sde_mlp2d")}


def sde_mnist_models() -> dict[str, str]:
    """{label: path} of MNIST scores the SDE page can read as SDEs: NCSNs that span a range of σ
    first (the shipped ncsn_mnist, trained on continuous σ, is the default; a single-σ DSM baseline
    is not an SDE model), then the tutorial models."""
    out = {}
    for c in shipped("ncsn_unet"):
        sched = read_meta(c.path).get("schedule") or {}
        if c.objective == "ncsn" and sched.get("sigma_max", 0) > sched.get("sigma_min", 0) > 0:
            out[f"{Path(c.path).name} (NCSN U-Net read as a VE SDE)"] = c.path
    out.update({f"{Path(c.path).name} (score-SDE tutorial U-Net, VE σ^t)": c.path
                for c in shipped("tutorial_unet")})
    return out


def vae_models(runs_root=None) -> dict[str, str]:
    """{label: checkpoint path} of score-based VAEs (model kind "vae_mnist"): the shipped ones, then
    the runs' checkpoints, newest first; unfinished runs say their state."""
    out = {c.label: c.path for c in shipped("vae_mnist")}
    for d, meta in run_checkpoints(runs_root or default_runs_root()):
        if _kind(meta) == "vae_mnist":
            state = "" if meta.get("state") == "finished" else f", {meta.get('state')}"
            out[f"run {d.name} ({meta.get('encoder')}, latent {meta.get('latent')}, step "
                f"{meta.get('steps')}{state})"] = str(d / "model")
    return out


def sde_mnist_measurements(path) -> dict:
    """What `python -m engine sde-mnist` measured on a shipped MNIST model ({"bpd",
    "inpaint", "cost"}, each with the command that measured it); {} when nothing was."""
    found = read_json(SDE_MNIST_METRICS, {})
    entry = found.get(Path(path).name, {}) if isinstance(found, dict) else {}
    return entry if isinstance(entry, dict) else {}


def modified(path) -> float:
    """When the checkpoint NAME was last written (its weights or meta; 0 when absent): a cache key
    that changes when a run saves again."""
    times = []
    for suffix in (".safetensors", ".json"):
        try:
            times.append(Path(str(path) + suffix).stat().st_mtime)
        except OSError:
            pass
    return max(times, default=0.0)


def example_png(path) -> bytes | None:
    """The example grid shipped next to a checkpoint (NAME.example.png), if any."""
    try:
        return Path(str(path) + ".example.png").read_bytes()
    except OSError:
        return None


def runs_started_with(runs: list[RunInfo], *argv: str) -> list[RunInfo]:
    """The runs (of a JobManager's list) whose command line starts with `argv` (e.g. "train2d"),
    and every unreadable run whose command line is unknown (its row says why, on every list)."""
    return [r for r in runs if list(r.config.get("argv") or [])[:len(argv)] == list(argv)
            or (r.unreadable and not r.config.get("argv"))]


def loss_records(run_dir) -> list[dict]:
    """The records of a run's metrics.jsonl that carry a loss, in order, in today's field names
    (engine.store.runs.METRIC_FIELDS; read_metrics renames the first version's)."""
    return [r for r in read_metrics(run_dir) if "loss" in r]


def preview_png(run_dir) -> bytes | None:
    """The run's latest preview grid (RUN_DIR/preview.png), if it wrote one."""
    try:
        return (Path(run_dir) / "preview.png").read_bytes()
    except OSError:
        return None
