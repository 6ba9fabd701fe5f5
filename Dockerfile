# syntax=docker/dockerfile:1
# chatwatch container image.
#
#   docker build -t chatwatch .
#   docker run --read-only -v chatwatch-state:/var/lib/chatwatch \
#     -v "$PWD/chatwatch.yaml:/etc/chatwatch/chatwatch.yaml:ro" -p 9317:9317 chatwatch
#
# Stage 1 builds chatwatch and every dependency as wheels; stage 2 installs them from
# there, offline, into a slim runtime with no compiler and no build tools. The agent
# runs as uid 10001 and writes only under /var/lib/chatwatch (`state_dir`: checkpoints
# and alert state), so the root filesystem can be read-only. tests/test_deploy_install.py
# repeats these install steps without a Docker engine.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY agent ./agent
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels chatwatch \
    && mkdir -p /etc/chatwatch /var/lib/chatwatch /usr/share/chatwatch/rules \
    && chown 10001:10001 /var/lib/chatwatch
# The rule pack, for configs that say `rule_files: ["/usr/share/chatwatch/rules/*.yml"]`.
COPY rules/*.yml /usr/share/chatwatch/rules/
USER 10001:10001
WORKDIR /var/lib/chatwatch
VOLUME ["/var/lib/chatwatch"]
EXPOSE 9317
ENTRYPOINT ["chatwatch"]
CMD ["run", "-c", "/etc/chatwatch/chatwatch.yaml"]
