"""model.cell_dims: that many latent dimensions for each of patch's cells of 2×2 pixels, so a
grid's latent grows with its area, beside the global vector of model.latent_dim (which the shape
head reads). The cells a canvas does not reach are the prior (no KL); the cells are local both ways
(a pixel moves only the cells near it, a cell only the pixels near it); every weight trains; the
default model passes the overfit check as a user runs it; a run saved before the cells (one global
vector, the readout's old names) and a run saved with the cells' total (model.spatial_dims) still
load and resume; the cells follow data.grid_size; cells on another architecture are refused by
name; and a dim's KL, its free-bits floor included, counts only the grids whose canvas reaches
it."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY

from arcvae.canvas import mark_outside
from arcvae.commands.cli import main
from arcvae.config_io import load_config
from arcvae.data.grids import load_arc_grids, pad_grids
from arcvae.errors import ConfigError
from arcvae.latent.inference import encode_grids, kl_over_reached, reached_by
from arcvae.latent.trained_run import load_run
from arcvae.models.build import build_model
from arcvae.training.checkpoint import list_checkpoints
from arcvae.training.losses import LossOptions, elbo, kl_per_sample_dim

# 32 global dims, then 15x15 cells (2x2 pixels each at 30x30) of 2 dims each
SPATIAL = [
    "model.latent_dim=32",
    "model.cell_dims=2",
    "model.channels=[16,32]",
    "model.embed_dim=8",
]
SYMBOL = LossOptions(recon="weighted_ce", padding="symbol")


@pytest.fixture(scope="module")
def arc1():
    return load_arc_grids("arc1", "training")


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(load_config(None, SPATIAL))


def _cells(z: torch.Tensor) -> torch.Tensor:
    """(B, 482) -> the cells' part as (B, 2, 15, 15)."""
    return z[:, 32:].reshape(-1, 2, 15, 15)


def _real(grids, canvas: int) -> tuple[torch.Tensor, torch.Tensor]:
    padded = pad_grids(grids, canvas)
    return mark_outside(padded.pixels, padded.sizes), padded.sizes


def test_cells_a_canvas_does_not_reach_are_the_prior_and_carry_no_kl(arc1):
    model = _model()
    for canvas, used in ((4, 2), (12, 6), (20, 10), (30, 15)):
        tokens, _ = _real([g for g in arc1 if max(g.shape) <= canvas][:6], canvas)
        mu, logvar = model.encode(tokens)
        mu_map, logvar_map = _cells(mu), _cells(logvar)
        outside = torch.ones(15, 15, dtype=torch.bool)
        outside[:used, :used] = False
        assert (mu_map[:, :, outside] == 0).all() and (logvar_map[:, :, outside] == 0).all(), canvas
        assert (mu_map[:, :, ~outside] != 0).all(), canvas
        kl = _cells(kl_per_sample_dim(mu, logvar)).mean(0)
        assert (kl[:, outside] == 0).all() and (kl[:, ~outside] > 0).all(), canvas


def test_the_latent_is_local_a_pixel_moves_the_cells_near_it_and_a_cell_the_pixels_near_it():
    model = _model().eval()
    grids = torch.randint(0, 10, (1, 30, 30), generator=torch.Generator().manual_seed(0)).to(
        torch.uint8
    )
    changed = grids.clone()
    changed[0, 29, 29] = (int(grids[0, 29, 29]) + 1) % 10
    moved = (_cells(model.encode(changed)[0]) != _cells(model.encode(grids)[0]))[0].any(0)
    assert moved[14, 14] and not moved[:13, :].any() and not moved[:, :13].any()
    z = torch.randn(1, 482)
    nudged = z.clone()
    nudged[0, 32 + torch.tensor([0, 225])] += 3.0  # both dims of cell (0, 0): pixels (0..1, 0..1)
    logits, _ = model.decode(z, 30)
    moved = (model.decode(nudged, 30)[0] != logits).any(1)[0]
    assert moved[:2, :2].all() and not moved[6:, :].any() and not moved[:, 6:].any()


def test_every_weight_of_a_spatial_model_trains_on_real_grids(arc1):
    model = _model()
    tokens, sizes = _real(arc1[:16], 30)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        elbo(model(tokens), tokens, sizes, 0.5, SYMBOL).loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change in two steps"


@pytest.mark.slow
def test_the_default_model_with_its_cells_passes_the_overfit_check_as_a_user_runs_it(tmp_path):
    """`python train_vae.py --overfit-batch` with nothing shrunk: 32 real grids at 30×30, the
    default cells."""
    code = main(
        ["--overfit-batch", "--out", str(tmp_path / "run"), f"data.cache_dir={tmp_path / 'cache'}"]
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0 and summary["passed"] is True and summary["iterations_to_target"] <= 500
    saved = load_config(tmp_path / "run" / "config.yaml").model
    assert (saved.latent_dim, saved.cell_dims) == (32, 8)


def _as_before_the_cells(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if "cell_dims" not in line)


def _with_the_cells_total(text: str) -> str:
    """What the versions between the cells and model.cell_dims wrote: latent_dim was D, and
    spatial_dims the cells' share of it (here 32 global + 2 x 5x5 cells at grid size 10)."""
    text = text.replace("latent_dim: 32\n", "latent_dim: 82\n")
    return text.replace("cell_dims: 2\n", "spatial_dims: 50\n")


@pytest.mark.slow
def test_a_run_saved_before_the_cells_loads_and_resumes(tmp_path):
    run = tmp_path / "run"
    assert main(["--out", str(run), *TINY, f"data.cache_dir={tmp_path / 'cache'}"]) == 0
    expected = load_run(run).reconstruct([[[0, 3, 0], [3, 3, 3]]])
    # What the version before the cells wrote: no model.spatial_dims, the readout's weights at the
    # top level.
    (run / "config.yaml").write_text(_as_before_the_cells((run / "config.yaml").read_text()))
    for path in list_checkpoints(run):
        state = torch.load(path, weights_only=True)
        state["model"] = {k.removeprefix("readout."): v for k, v in state["model"].items()}
        state["config_yaml"] = _as_before_the_cells(state["config_yaml"])
        torch.save(state, path)
    old = load_run(run)
    assert old.config.model.cell_dims == 0 and old.net.cells is None
    assert [g.tolist() for g in old.reconstruct([[[0, 3, 0], [3, 3, 3]]])] == [
        g.tolist() for g in expected
    ]
    assert main(["--resume", str(run), "train.epochs=3", "--force"]) == 0


@pytest.mark.slow
def test_a_run_saved_with_the_cells_total_loads_and_resumes(tmp_path):
    run = tmp_path / "run"
    cells = ["model.arch=patch", "model.latent_dim=32", "model.cell_dims=2"]
    argv = ["--out", str(run), *TINY, *cells, f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(argv) == 0
    expected = load_run(run).reconstruct([[[0, 3, 0], [3, 3, 3]]])
    (run / "config.yaml").write_text(_with_the_cells_total((run / "config.yaml").read_text()))
    for path in list_checkpoints(run):
        state = torch.load(path, weights_only=True)
        state["config_yaml"] = _with_the_cells_total(state["config_yaml"])
        torch.save(state, path)
    old = load_run(run)
    assert (old.config.model.latent_dim, old.config.model.cell_dims) == (32, 2)
    assert old.net.latent_dim == 32 + 2 * 25
    assert [g.tolist() for g in old.reconstruct([[[0, 3, 0], [3, 3, 3]]])] == [
        g.tolist() for g in expected
    ]
    assert main(["--resume", str(run)]) == 0  # the saved config, read anew, is the same config
    assert main(["--resume", str(run), "train.epochs=3", "--force"]) == 0


def test_the_cells_follow_the_grid_size_and_each_arch_has_its_own_defaults():
    for grid_size, cells in ((30, 15), (16, 8), (5, 3)):
        cfg = load_config(None, [f"data.grid_size={grid_size}"])
        assert build_model(cfg).latent_dim == 32 + 8 * cells * cells
    for arch in ("conv_any", "resnet"):
        cfg = load_config(None, [f"model.arch={arch}"])
        assert (cfg.model.latent_dim, cfg.model.cell_dims) == (256, 0)
        assert build_model(cfg).latent_dim == 256


def test_cells_on_other_archs_and_the_old_key_on_the_command_line_are_refused_by_name():
    for arch in ("conv_any", "resnet"):
        with pytest.raises(ConfigError, match="model.cell_dims: 4 needs model.arch=patch"):
            load_config(None, ["model.cell_dims=4", f"model.arch={arch}"])
    with pytest.raises(ConfigError, match="model.cell_dims: -2 is out of range"):
        load_config(None, ["model.cell_dims=-2"])
    with pytest.raises(ConfigError, match="model.spatial_dims was replaced by model.cell_dims"):
        load_config(None, ["model.spatial_dims=0"])


def test_the_model_says_which_dims_a_canvas_reaches_and_free_bits_floor_only_those(arc1):
    """`reached` marks exactly the dims that are not the prior; with λ above every KL, KL' is λ for
    each reached dim and nothing for the cells beyond the canvas."""
    model = _model()
    tokens, sizes = _real([g for g in arc1 if max(g.shape) <= 12][:6], 12)
    out = model(tokens)
    prior = (out.mu == 0) & (out.logvar == 0)  # (B, D)
    assert torch.equal(out.reached, ~prior.all(0)) and int(out.reached.sum()) == 32 + 2 * 6 * 6
    lam = 100.0
    options = LossOptions(recon="weighted_ce", padding="symbol", free_bits=lam)
    parts = elbo(out, tokens, sizes, 0.5, options)
    assert parts.kl_clamped.item() == pytest.approx(lam * (32 + 2 * 36))


def test_commands_take_a_dims_kl_over_the_grids_that_reach_it(arc1):
    """`kl_over_reached`: a cell only the large grids reach is averaged over those grids alone."""
    model = _model()
    cfg = load_config(None, SPATIAL)
    small = [g for g in arc1 if max(g.shape) <= 4][:3]
    large = [g for g in arc1 if max(g.shape) == 30][:2]
    grids = pad_grids(small + large, 30)
    reached = reached_by(model, grids, cfg)
    far = 32 + 2 * 15 * 15 - 1  # the last cell's last dim: only a 30x30 canvas reaches it
    assert reached[:, far].tolist() == [False] * 3 + [True] * 2
    with torch.no_grad():
        mu, logvar = encode_grids(model, grids, cfg, torch.device("cpu"))
    kl = kl_over_reached(mu, logvar, reached)
    by_hand = kl_per_sample_dim(mu, logvar)[3:, far].mean()
    assert kl[far] == pytest.approx(by_hand.item()) and by_hand > 0


def test_cells_alone_without_a_global_vector_in_black_mode():
    """model.latent_dim=0: the cells are the whole latent (configs/atoms_large.yaml); nothing below
    half resolution is built, every weight trains, a cell moves only the pixels near it; without
    cells, or in symbol mode (whose shape head reads the global vector), it is refused by name."""
    cells_only = ["model.latent_dim=0", "model.cell_dims=1", "data.padding=black"]
    cfg = load_config(None, [*cells_only, "data.grid_size=16", "model.channels=[16,32]"])
    torch.manual_seed(0)
    model = build_model(cfg)
    assert model.latent_dim == 64 and model.readout is None
    grids = torch.randint(0, 10, (8, 16, 16), generator=torch.Generator().manual_seed(0))
    out = model(grids)
    assert out.mu.shape == (8, 64) and out.logits.shape == (8, 10, 16, 16)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        elbo(model(grids), grids, None, 0.5, LossOptions(recon="ce")).loss.backward()
        optimizer.step()
    for name, p in model.named_parameters():
        assert not torch.equal(p.detach(), before[name]), f"{name} did not change in two steps"
    model.eval()
    z = torch.randn(1, 64)
    nudged = z.clone()
    nudged[0, 0] += 3.0  # cell (0, 0): pixels (0..1, 0..1)
    moved = (model.decode(nudged, 16)[0] != model.decode(z, 16)[0]).any(1)[0]
    assert moved[:2, :2].all() and not moved[6:, :].any() and not moved[:, 6:].any()
    with pytest.raises(ConfigError, match="model.latent_dim: 0 .* needs model.arch=patch"):
        load_config(None, ["model.latent_dim=0", "model.cell_dims=0", "data.padding=black"])
    with pytest.raises(ConfigError, match="model.latent_dim: 0 needs data.padding=black"):
        load_config(None, ["model.latent_dim=0", "model.cell_dims=1"])
