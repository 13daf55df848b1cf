# syntax=docker/dockerfile:1
# krakenbot: a small image that runs the daemon as a non-root user.
# Build:  docker build -t krakenbot .
# Run:    docker run -v krakenbot-data:/data -v "$PWD/deploy.yaml:/config/deploy.yaml:ro" \
#           -e KRAKENBOT_CONFIG=/config/deploy.yaml krakenbot

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the C extensions (the order book's core, bot/market/_bookcore*.c and
# _bookcore.h, and the WebSocket add_order frame, bot/execution/_wsframe.c: setup.py lists
# the files), in this stage only: the runtime image gets the built modules, not the
# compiler. Not pinned: bookworm's gcc and libc6-dev move with its point releases, and any
# of them builds the modules.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY bot ./bot
COPY strategies ./strategies
COPY config ./config
RUN python -m venv /opt/krakenbot \
 && /opt/krakenbot/bin/pip install --no-compile . \
 && /opt/krakenbot/bin/python -I -c "import bot.market._bookcore, bot.execution._wsframe" \
 && mkdir -p /opt/krakenbot/config \
 && cp config/*.yaml /opt/krakenbot/config/

FROM python:3.11-slim-bookworm
ENV PATH=/opt/krakenbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KRAKENBOT_CONFIG=/opt/krakenbot/config/default.yaml
RUN groupadd --system --gid 10001 krakenbot \
 && useradd --system --uid 10001 --gid krakenbot --home-dir /data --shell /usr/sbin/nologin krakenbot \
 && mkdir -p /data \
 && chown krakenbot:krakenbot /data
COPY --from=build /opt/krakenbot /opt/krakenbot
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["krakenbot", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
# The working directory is the data volume: relative paths in the config (store.path:
# data/paper.db in paper mode, data/live.db in live mode, by default) land on it.
# Exec form: krakenbot is PID 1's only process and receives SIGTERM itself.
ENTRYPOINT ["krakenbot", "run"]
