"""The ``sb3`` trainer: run directory, checkpoints in the core format, resume with replay buffer, errors."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch

from mlcore.errors import ConfigError
from mlcore.training.checkpoint import build_model, load_checkpoint, make_meta
from mlcore_nav_rl.agent import DQNConfig, NavAgent, SACConfig
from mlcore_nav_rl.data import NavData, NavDataConfig
from mlcore_nav_rl.envs import NavEnvConfig
from mlcore_nav_rl.trainer import SB3Trainer, SB3TrainerConfig, load_algorithm

TINY = {"net_arch": [16], "learning_starts": 50, "batch_size": 16, "buffer_size": 2000}


def _setup(model_cfg, **env):
    agent = NavAgent(model_cfg)
    data = NavData(NavDataConfig(demo_steps=16, env=NavEnvConfig(max_steps=30, action_type=agent.action_type, **env)))
    meta = make_meta(
        plugin="nav-rl",
        components={
            "dataset": ("nav", data.config),
            "model": ("sac" if agent.algorithm == "sac" else agent.algorithm, model_cfg),
        },
    )
    return agent, data, meta


def test_fit_writes_run_dir_and_resumes(tmp_path):
    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(total_timesteps=160, eval_freq=80, eval_episodes=2, progress=False, plot=False)
    res = SB3Trainer(cfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert res.epochs_run == 2 and res.stopped_reason == "completed"
    assert [h["timesteps"] for h in res.history] == [80, 160]
    for name in (
        "training_stats.json",
        "checkpoints/best.pt",
        "checkpoints/last.pt",
        "checkpoints/last_replay_buffer.pkl",
    ):
        assert (tmp_path / name).exists(), name
    # the core's "tensorboard" tracker writes one event stream; SB3's own writer is off by default
    assert [p.name for p in (tmp_path / "tensorboard").iterdir() if p.is_dir()] == []
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tensorboard").iterdir())
    stats = json.loads((tmp_path / "training_stats.json").read_text())
    assert stats["epochs_run"] == 2 and {"success_rate", "return_mean", "collision_rate"} <= set(stats["history"][0])
    # core format, weights_only-safe, rebuildable through the registry
    raw = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert raw["sb3_zip"].dtype == torch.uint8 and raw["timesteps"] == 160
    rebuilt = build_model(load_checkpoint(tmp_path / "checkpoints/best.pt"), expect="sac")
    x = agent.example_input(4)
    best = load_checkpoint(tmp_path / "checkpoints/best.pt")
    agent.load_state_dict(best["model"])
    assert torch.allclose(rebuilt(x), agent(x))
    algo = load_algorithm(raw)
    assert algo.num_timesteps == 160
    # resume: continues from 200 with the stored replay buffer and history
    cfg2 = SB3TrainerConfig(total_timesteps=240, eval_freq=80, eval_episodes=2, progress=False, plot=False)
    res2 = SB3Trainer(cfg2, device="cpu", seed=0).fit(
        NavAgent(SACConfig(**TINY)), data, None, run_dir=tmp_path, meta=meta
    )
    assert [h["timesteps"] for h in res2.history] == [80, 160, 240]
    assert load_algorithm(torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)).num_timesteps == 240


def test_fit_dqn_with_curriculum_writes_progress(tmp_path):
    from mlcore_nav_rl.curriculum import CurriculumConfig, StageSpec

    stages = [StageSpec("a", 0, 0, 1, 10, success_rate=0.0, collision_rate=1.0), StageSpec("b", 1, 1, 2, 20)]
    cfg = DQNConfig(**TINY, curriculum=True, curriculum_config=CurriculumConfig(stages=stages, window=2))
    agent, data, meta = _setup(cfg)
    res = SB3Trainer(
        SB3TrainerConfig(total_timesteps=120, eval_freq=60, eval_episodes=2, progress=False), device="cpu"
    ).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    progress = json.loads((tmp_path / "curriculum_progress.json").read_text())
    assert progress["current_stage"] == 1 and progress["history"][0]["to_name"] == "b"
    assert res.history[-1]["stage"] == 1


def test_mismatched_sensor_count_is_a_config_error(tmp_path):
    agent, data, meta = _setup(SACConfig(**TINY), n_rays=8)
    with pytest.raises(ConfigError, match="n_rays"):
        SB3Trainer(SB3TrainerConfig(total_timesteps=10), device="cpu").fit(
            agent, data, None, run_dir=tmp_path, meta=meta
        )
    with pytest.raises(ConfigError, match="nav-rl agents"):
        SB3Trainer(SB3TrainerConfig(total_timesteps=10), device="cpu").fit(
            torch.nn.Linear(2, 2), data, None, run_dir=tmp_path
        )


def test_learning_curves_plot(tmp_path):
    from mlcore_nav_rl.trainer import plot_learning_curves

    hist = [
        {
            "timesteps": t,
            "return_mean": r,
            "return_std": 1.0,
            "success_rate": s,
            "collision_rate": 0.1,
            "spl": s,
            "stage": 1,
        }
        for t, r, s in ((100, -5.0, 0.1), (200, 2.0, 0.6))
    ]
    path = plot_learning_curves(hist, tmp_path / "training_curves.png")
    assert path.stat().st_size > 1000
    assert plot_learning_curves([], tmp_path / "none.png") is None


def test_mlcore_evaluate_uses_evaluate_checkpoint(tmp_path):
    from mlcore import api
    from mlcore_nav_rl.evaluation.evaluator import NavEvaluatorConfig

    agent = NavAgent(SACConfig(**TINY))
    data = NavData(NavDataConfig(demo_steps=16, env=NavEnvConfig(max_steps=20)))
    ev = NavEvaluatorConfig(episodes=3, robustness=False, unseen_layouts=False, baselines=True, gif=False)
    meta = make_meta(
        plugin="nav-rl",
        components={"dataset": ("nav", data.config), "model": ("sac", agent.config), "evaluator": ("nav", ev)},
    )
    cfg = SB3TrainerConfig(total_timesteps=60, eval_freq=60, eval_episodes=3, progress=False, plot=False, trackers=[])
    res = SB3Trainer(cfg, device="cpu").fit(agent, data, None, run_dir=tmp_path, meta=meta)
    metrics = api.evaluate(tmp_path / "checkpoints" / "best.pt", out_dir=tmp_path / "eval")
    assert {"success_rate", "collision_rate", "path_efficiency", "planner_success_rate"} <= set(metrics)
    assert metrics["planner_success_rate"] >= metrics["random_success_rate"]
    assert res.best_checkpoint.exists() and (tmp_path / "eval" / "metrics.json").exists()


def test_her_nstep_run_resumes_with_its_replay_buffer(tmp_path):
    cfg_model = SACConfig(her=True, n_step=2, **TINY)
    agent = NavAgent(cfg_model)
    data = NavData(NavDataConfig(demo_steps=16, env=NavEnvConfig(max_steps=20, reward="sparse")))
    meta = make_meta(plugin="nav-rl", components={"dataset": ("nav", data.config), "model": ("sac", cfg_model)})
    kw = {"eval_freq": 60, "eval_episodes": 1, "progress": False, "plot": False, "trackers": []}
    first = SB3Trainer(SB3TrainerConfig(total_timesteps=60, **kw), device="cpu")
    first.fit(agent, data, None, run_dir=tmp_path, meta=meta)
    res = SB3Trainer(SB3TrainerConfig(total_timesteps=120, **kw), device="cpu").fit(
        NavAgent(cfg_model), data, None, run_dir=tmp_path, meta=meta
    )
    assert [h["timesteps"] for h in res.history] == [60, 120]
    raw = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    algo = load_algorithm(raw, env=data.make_vec_env(1, goal_conditioned=True))
    import pickle

    with open(tmp_path / "checkpoints/last_replay_buffer.pkl", "rb") as fh:
        buf = pickle.load(fh)
    assert type(buf).__name__ == "NStepHerReplayBuffer" and buf.pos == 120 % buf.buffer_size
    assert algo.num_timesteps == 120


# ----------------------------------------------------------------------------- trackers
_FAKE = "_nav_rl_fake_tracking"


class RecordingTracker:
    """Records every call (registered below as tracker ``recorder``)."""

    instances: list[RecordingTracker] = []

    def __init__(self) -> None:
        self.started: list[tuple] = []
        self.scalars: list[tuple[dict, int]] = []
        self.closed = 0
        RecordingTracker.instances.append(self)

    def start(self, run_dir, config):
        self.started.append((run_dir, config))

    def log_scalars(self, values, step):
        self.scalars.append((dict(values), step))

    def log_histogram(self, name, values, step):
        pass

    def close(self):
        self.closed += 1


@pytest.fixture
def recorder_registry():
    from mlcore import hookimpl
    from mlcore.components import ComponentSpec
    from mlcore.registry import Registry, get_registry, set_registry
    from mlcore.training.tracking import Tracker

    cls = type("RecordingTracker", (RecordingTracker, Tracker), {})
    mod = types.ModuleType(_FAKE)
    mod.RecordingTracker = cls
    sys.modules[_FAKE] = mod

    class _Plugin:
        @staticmethod
        @hookimpl
        def register_trackers():
            return [ComponentSpec("recorder", f"{_FAKE}:RecordingTracker", summary="records calls")]

    nav = get_registry().plugins["nav-rl"]
    reg = Registry.from_modules({"nav-rl": sys.modules[nav.module], "fake": _Plugin()})
    restore = set_registry(reg)
    RecordingTracker.instances.clear()
    yield
    restore()
    sys.modules.pop(_FAKE, None)


def test_scalars_go_to_the_configured_trackers(tmp_path, recorder_registry):
    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(
        total_timesteps=160, eval_freq=80, eval_episodes=2, progress=False, plot=False, trackers=["recorder"]
    )
    res = SB3Trainer(cfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    (tr,) = RecordingTracker.instances
    assert tr.closed == 1 and len(tr.started) == 1
    run_dir, config = tr.started[0]
    assert run_dir == tmp_path and config["trainer"]["trackers"] == ["recorder"] and config["seed"] == 0
    assert "data_state" not in config["meta"] and config["meta"]["plugin"] == "nav-rl"
    evals = [(v, step) for v, step in tr.scalars if "eval/success_rate" in v]
    assert [step for _, step in evals] == [80, 160]
    for (values, step), rec in zip(evals, res.history):
        assert values["eval/timesteps"] == step == rec["timesteps"]
        for key in ("success_rate", "return_mean", "collision_rate", "episode_length"):
            assert values[f"eval/{key}"] == pytest.approx(rec[key])
    # SB3's own losses, forwarded from its logger at the environment step it dumped them
    train = [(v, step) for v, step in tr.scalars if "train/critic_loss" in v]
    assert train and all(50 < step <= 160 for _, step in train)
    assert {"train/actor_loss", "train/ent_coef"} <= set(train[-1][0])
    assert all(isinstance(x, float) for v, _ in tr.scalars for x in v.values())
    assert not (tmp_path / "tensorboard").exists()  # only the trackers named in the config


def test_sb3_tensorboard_goes_to_its_own_folder(tmp_path, recorder_registry):
    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(
        total_timesteps=120,
        eval_freq=120,
        eval_episodes=1,
        progress=False,
        plot=False,
        trackers=["recorder"],
        sb3_tensorboard=True,
    )
    SB3Trainer(cfg, device="cpu").fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tensorboard" / "sb3").iterdir())
    assert RecordingTracker.instances[0].closed == 1


def test_unknown_tracker_is_a_one_line_config_error(tmp_path):
    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(total_timesteps=10, progress=False, trackers=["tensorboard", "nosuchtracker"])
    with pytest.raises(ConfigError, match=r"trainer\.trackers: .*'nosuchtracker'") as err:
        SB3Trainer(cfg, device="cpu").fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_stats_say_running_until_training_really_ends(tmp_path, monkeypatch):
    """What a kill -9 between evaluation points leaves on disk: ``running``, never ``completed``.

    Also: with the default ``torch_threads=0`` the trainer leaves the core's thread setting alone.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    seen = []
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)

    class ReadStats(BaseCallback):
        def _on_step(self) -> bool:
            path = tmp_path / "training_stats.json"
            if path.exists():
                seen.append(json.loads(path.read_text())["stopped_reason"])
            return True

    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(total_timesteps=160, eval_freq=60, eval_episodes=1, progress=False, plot=False)
    res = SB3Trainer(cfg, device="cpu", seed=0, callbacks=[ReadStats()]).fit(
        agent, data, None, run_dir=tmp_path, meta=meta
    )
    assert seen and set(seen) == {"running"}
    assert threads == []
    assert res.stopped_reason == "completed"
    assert json.loads((tmp_path / "training_stats.json").read_text())["stopped_reason"] == "completed"


def test_interrupt_keeps_last_checkpoint_and_raises_run_interrupted(tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    from mlcore.errors import RunInterrupted

    class CtrlC(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == 70:
                raise KeyboardInterrupt
            return True

    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(total_timesteps=160, eval_freq=60, eval_episodes=1, progress=False, plot=False)
    with pytest.raises(RunInterrupted, match="70 environment steps"):
        SB3Trainer(cfg, device="cpu", seed=0, callbacks=[CtrlC()]).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert json.loads((tmp_path / "training_stats.json").read_text())["stopped_reason"] == "interrupted"
    assert torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)["timesteps"] == 70


def test_best_checkpoint_is_selected_on_the_final_stage(tmp_path, monkeypatch):
    """With ``eval_stage="current"`` the curve is on the current stage, best.pt on the final one."""
    from mlcore_nav_rl.curriculum import CurriculumConfig, StageSpec
    from mlcore_nav_rl.evaluation import episodes

    # success by stage and evaluation point: the easy current stage gets worse, the final stage better
    table = {0: [1.0, 0.5], 3: [0.0, 1.0]}  # keyed by the stage's n_moving
    calls = {0: 0, 3: 0}

    def fake_run_episodes(policy, env, n, **kw):
        stage = env.unwrapped.config.n_moving
        success = table[stage][calls[stage]]
        calls[stage] += 1
        rec = {"return": success, "length": 5.0, "success": success, "collision": 0.0}
        return [{**rec, "goals_reached": success, "path_length": 1.0, "optimal_length": 1.0}]

    monkeypatch.setattr(episodes, "run_episodes", fake_run_episodes)
    stages = [StageSpec("easy", 0, 0, 1, 30, success_rate=1.0), StageSpec("hard", 0, 3, 1, 30)]
    cfg = SACConfig(**TINY, curriculum=True, curriculum_config=CurriculumConfig(stages=stages, force_stage=0))
    agent, data, meta = _setup(cfg)
    tcfg = SB3TrainerConfig(total_timesteps=120, eval_freq=60, eval_episodes=1, progress=False, plot=False)
    res = SB3Trainer(tcfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert [h["success_rate"] for h in res.history] == [1.0, 0.5]  # the curve: current stage
    assert [h["final_stage_success_rate"] for h in res.history] == [0.0, 1.0]
    assert res.best_epoch == 2 and res.best_metric == 1.0
    assert load_checkpoint(tmp_path / "checkpoints/best.pt")["best_epoch"] == 2


def test_each_evaluation_is_reported_to_an_active_search(tmp_path):
    """`mlcore tune` prunes RL trials on the evaluation records: every one reaches the reporter, in order."""
    from mlcore.tuning.reporting import reporting

    class Collect:
        def __init__(self):
            self.seen = []

        def report(self, record, step):
            self.seen.append((step, record["timesteps"], record["success_rate"]))

    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(total_timesteps=160, eval_freq=80, eval_episodes=2, progress=False, plot=False)
    collect = Collect()
    with reporting(collect):
        res = SB3Trainer(cfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert [(s, t) for s, t, _ in collect.seen] == [(1, 80), (2, 160)]
    assert [r for _, _, r in collect.seen] == [h["success_rate"] for h in res.history]


def test_a_pruning_reporter_stops_the_rl_run(tmp_path):
    """A pruner raising at the first evaluation ends training there (the second evaluation never runs)."""
    from mlcore.tuning.reporting import reporting

    class Pruned(Exception):
        pass

    class PruneAtOnce:
        def report(self, record, step):
            raise Pruned(step)

    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(total_timesteps=240, eval_freq=80, eval_episodes=2, progress=False, plot=False)
    with reporting(PruneAtOnce()), pytest.raises(Pruned) as err:
        SB3Trainer(cfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert err.value.args == (1,)  # raised at the first evaluation, and it ended the run


def test_target_reached_needs_consecutive_points_on_the_selection_figure():
    t = SB3Trainer(SB3TrainerConfig(stop_at=0.9, stop_evals=2))
    assert not t.target_reached([{"success_rate": 1.0}])
    assert not t.target_reached([{"success_rate": 1.0}, {"success_rate": 0.85}])
    assert t.target_reached([{"success_rate": 0.2}, {"success_rate": 0.9}, {"success_rate": 0.95}])
    # with a curriculum below its final stage the final-stage figure decides, not the easy stage's
    easy = [{"success_rate": 1.0, "final_stage_success_rate": 0.3}] * 2
    assert not t.target_reached(easy)
    assert not SB3Trainer(SB3TrainerConfig(stop_at=0.0)).target_reached([{"success_rate": 1.0}] * 5)


def test_training_stops_early_once_the_target_is_held(tmp_path, monkeypatch):
    """``stop_at``: success >= 0.9 at two consecutive points ends ``learn`` there; resume does not go on."""
    from mlcore_nav_rl.evaluation import episodes

    successes = iter([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])

    def fake_run_episodes(policy, env, n, **kw):
        s = next(successes)
        rec = {"return": s, "length": 5.0, "success": s, "collision": 0.0}
        return [{**rec, "goals_reached": s, "path_length": 1.0, "optimal_length": 1.0}]

    monkeypatch.setattr(episodes, "run_episodes", fake_run_episodes)
    agent, data, meta = _setup(SACConfig(**TINY))
    cfg = SB3TrainerConfig(
        total_timesteps=600, eval_freq=60, eval_episodes=1, progress=False, plot=False, stop_at=0.9, stop_evals=2
    )
    res = SB3Trainer(cfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert [h["timesteps"] for h in res.history] == [60, 120, 180, 240]
    assert res.stopped_reason == "early_stopping"
    assert json.loads((tmp_path / "training_stats.json").read_text())["stopped_reason"] == "early_stopping"
    assert torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)["timesteps"] == 240
    again = SB3Trainer(cfg, device="cpu", seed=0).fit(agent, data, None, run_dir=tmp_path, meta=meta)
    assert again.stopped_reason == "early_stopping" and len(again.history) == 4
