# The one image of the team stack in docker-compose.yml. It serves the project's code location over gRPC
# (service dagster_code: `dagster code-server`, which also runs the launched runs), and the same image runs
# dagster-webserver and dagster-daemon, which import no project code: their workspace
# (deploy/compose/workspace.yaml) points at the code server. One build, three services.
#
#   docker compose build          (`docker compose up` builds it when missing; `up --build` after a code change)
#
# Debian 13 (trixie) packages Node 20, which the agentdb asset runs (services/agentdb/tv5-agentdb.mjs).
FROM python:3.11-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/tv5/app

# The dependencies, in a layer that only pyproject.toml invalidates: an editable install of an empty
# package, whose sources the COPY below puts in place. Editable because the package finds the Node side
# and its code versions' files relative to its own directory (tv5_assets/agentdb/node.py,
# tv5_assets/core/versioning.py): installed into site-packages it would look for services/agentdb there.
# No test extras. For a CPU-only torch, build with --build-arg PIP_EXTRA_INDEX_URL=<PyTorch's CPU wheel index>.
ARG PIP_EXTRA_INDEX_URL
COPY pyproject.toml ./
RUN mkdir tv5_assets && touch README.md tv5_assets/__init__.py \
    && pip install -e .

# AgentDB 1.6.1 from the lock file; no install scripts (its sharp dependency would download libvips, and
# nothing the project uses needs a build step)
COPY services/agentdb/package.json services/agentdb/package-lock.json services/agentdb/
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error --prefix services/agentdb

COPY . .
# the team instance (Postgres storage, queued runs, run monitoring and retries, pools): every value that
# differs between deployments comes from the environment docker-compose.yml sets
COPY tv5_assets/platform/dagster_team.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy/compose/workspace.yaml /opt/dagster/workspace.yaml

EXPOSE 4000 3000
# the code server (docker-compose.yml's dagster_code runs the same): give every store pool its limit on the
# instance (idempotent; a store step fails on a persistent instance whose pool has none), then serve
CMD ["sh", "-c", "python -m tv5_assets.platform pools apply && exec dagster code-server start -h 0.0.0.0 -p 4000 -m tv5_assets.definitions --location-name tv5_assets"]
