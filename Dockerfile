# syntax=docker/dockerfile:1
# The mlcore image: the core with its extras, every plugin in plugins/, and Ray for scale-out.
#   CPU (default):  docker build -t mlcore .
#   CUDA:           docker build -t mlcore:cu124 --build-arg CUDA=12.4 .
#                   (torch's CUDA wheels carry the CUDA runtime; the host needs the NVIDIA driver and
#                   the NVIDIA container toolkit: docker run --gpus all mlcore:cu124 doctor)
# The compose file (compose.yaml) runs it as a Ray head + worker beside an MLflow server.
# See docs/scale-out.md.
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim

# empty = the CPU wheel of torch; a CUDA version such as 12.4 = the matching CUDA wheel (cu124)
ARG CUDA=""
ARG TORCH_SPEC="torch>=2.3"
ARG EXTRAS="onnx,mlflow,yaml,wandb"
ARG RAY_SPEC="ray[default,tune]>=2.9"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/mlcore
COPY packages/mlcore packages/mlcore
COPY plugins plugins
COPY examples/mlcore-sine-plugin examples/mlcore-sine-plugin

# the packages keep version ranges (pin at build time with --build-arg TORCH_SPEC=torch==2.13.0 etc.)
# hadolint ignore=DL3013
RUN set -eux; \
    if [ -z "$CUDA" ]; then variant=cpu; else variant="cu$(echo "$CUDA" | tr -d .)"; fi; \
    pip install "$TORCH_SPEC" --index-url "https://download.pytorch.org/whl/$variant" --extra-index-url https://pypi.org/simple; \
    pip install "./packages/mlcore[$EXTRAS]" ./plugins/*/ ./examples/mlcore-sine-plugin "$RAY_SPEC"; \
    mlcore plugins

# runs, data and experiments go to the mounted working directory
WORKDIR /work
RUN useradd --create-home --uid 1000 mlcore && chown mlcore /work
USER 1000

ENTRYPOINT ["mlcore"]
CMD ["--help"]
