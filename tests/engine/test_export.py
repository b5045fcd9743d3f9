"""Downloads: trajectories as animated GIFs (engine.render.export), decoded back to frames."""

import io

import numpy as np
import pytest
from PIL import Image, ImageColor

from engine.render import export


def decode(data: bytes) -> list[np.ndarray]:
    """Every frame of a GIF as an RGB array."""
    im = Image.open(io.BytesIO(data))
    assert im.format == "GIF"
    frames = []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB")))
    return frames


def test_trajectory_gif_decodes_to_one_frame_per_state_with_the_particles_where_they_are():
    # Two panels, 5 frames, one particle walking along the diagonal from (−8, −8) to (8, 8).
    path = np.linspace(-8, 8, 5)[:, None, None] * np.ones((1, 1, 2))
    red, blue = "#d62728", "#1f77b4"
    data = export.trajectory_gif([dict(name="a", frames=path, color=red),
                                  dict(name="b", frames=-path, color=blue)], -10, 10,
                                 captions=[f"step {i}" for i in range(5)], size=200, dot=3)
    frames = decode(data)
    assert len(frames) == 5
    h, w, _ = frames[0].shape
    assert w == 2 * (200 + 8) + 8 and h == 24 + 200 + 24
    assert Image.open(io.BytesIO(data)).info.get("loop") == 0      # loops forever
    for i, frame in enumerate(frames):
        for panel, color, sign in ((0, red, 1), (1, blue, -1)):
            # The data point x maps to pixel left + (x + 10)/20 · 200, y upwards.
            x = sign * np.linspace(-8, 8, 5)[i]
            left = 8 + panel * 208
            px, py = int(round(left + (x + 10) / 20 * 200)), int(round(24 + 200 - (x + 10) / 20 * 200))
            assert tuple(frame[py, px]) == ImageColor.getrgb(color), (i, panel)
    assert not np.array_equal(frames[0], frames[-1])                # the particles moved


def test_langevin_gif_of_both_samplers_has_a_frame_per_recorded_state():
    from engine.lab.comparison import plain_and_annealed, sample_exact
    from engine.lab.mixing import MixConfig

    configs = plain_and_annealed(MixConfig(particles=100, steps=20, record_every=10,
                                           record_particles=50))
    results = dict(zip(configs, sample_exact(tuple(configs.values()))))
    n_frames = len(results["Annealed Langevin"]["frames"])
    assert n_frames == 21                                           # step 0 and every 10 of 200
    frames = decode(export.langevin_gif(results, {}, lim=10, means=((5, 5), (-5, -5)),
                                        label_by="Annealed Langevin"))
    assert len(frames) == n_frames
    assert len({f.tobytes() for f in frames}) > n_frames // 2       # they differ


def test_reverse_gif_picks_each_run_s_frame_nearest_to_common_times():
    times_a = np.linspace(1, 0, 11)
    times_b = np.linspace(1, 0, 6)
    runs = {"a": dict(frames=np.zeros((11, 3, 2)) + times_a[:, None, None], times=times_a),
            "b": dict(frames=np.zeros((6, 3, 2)) + times_b[:, None, None], times=times_b)}
    frames = decode(export.reverse_gif(runs, {}, lim=2, n_frames=6))
    assert len(frames) == 6


def test_bad_input_is_one_sentence_and_the_chart_config_saves_png_at_2x():
    with pytest.raises(ValueError, match="same F"):
        export.trajectory_gif([dict(frames=np.zeros((3, 2, 2))), dict(frames=np.zeros((4, 2, 2)))], -1, 1)
    with pytest.raises(ValueError, match="Nothing to animate"):
        export.langevin_gif({"x": {"frames": None}}, {}, lim=1)
    assert export.CHART_CONFIG["toImageButtonOptions"] == {"format": "png", "scale": 2}
