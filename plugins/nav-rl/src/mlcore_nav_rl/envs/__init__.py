"""Gymnasium navigation environments, vectorised construction and robustness wrappers."""

from __future__ import annotations

from mlcore_nav_rl.envs.nav_env import STAGE_FIELDS, NavEnv, NavEnvConfig, NavGoalEnv

__all__ = ["STAGE_FIELDS", "NavEnv", "NavEnvConfig", "NavGoalEnv", "make_env", "make_vec_env"]

#: gymnasium ids: ``gymnasium.make("mlcore_nav_rl/Nav-v0", config=NavEnvConfig(...))``
ENV_IDS = {
    "mlcore_nav_rl/Nav-v0": "mlcore_nav_rl.envs.nav_env:NavEnv",
    "mlcore_nav_rl/NavGoal-v0": "mlcore_nav_rl.envs.nav_env:NavGoalEnv",
}


def _register() -> None:
    import gymnasium

    for env_id, entry in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry)


_register()


def make_env(
    config: NavEnvConfig | None = None, *, goal_conditioned: bool = False, render_mode: str | None = None, **kw
):
    """One environment (``NavGoalEnv`` when ``goal_conditioned``)."""
    cls = NavGoalEnv if goal_conditioned else NavEnv
    return cls(config, render_mode=render_mode, **kw)


def make_vec_env(
    config: NavEnvConfig | None = None,
    n_envs: int = 1,
    *,
    goal_conditioned: bool = False,
    seed: int = 0,
    monitor: bool = True,
):
    """An SB3 ``DummyVecEnv`` of ``n_envs`` environments (Monitor-wrapped for episode statistics), seeded."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    def factory():
        env = make_env(config, goal_conditioned=goal_conditioned)
        return Monitor(env, info_keywords=("is_success", "collision")) if monitor else env

    venv = DummyVecEnv([factory for _ in range(n_envs)])
    venv.seed(seed)
    return venv
