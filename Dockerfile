# llmswitch gateway image: the wheel is built in a first stage, then installed with its postgres and
# redis extras (every dependency pinned by requirements/lock.txt) into a venv of a slim runtime image,
# run as a non-root user. See docs/deployment.md.
#
#   docker build -t llmswitch .
#   docker run -p 4000:4000 -v ./config.yaml:/app/config.yaml:ro -e LLMSWITCH_MASTER_KEY=sk-... llmswitch
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY docker/install.sh docker/install.sh
COPY src/ src/
RUN python -m venv /opt/build \
 && PYTHON=/opt/build/bin/python sh docker/install.sh wheel /dist

FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/llmswitch/bin:$PATH
COPY requirements/lock.txt /tmp/install/lock.txt
COPY docker/install.sh /tmp/install/install.sh
COPY --from=build /dist /tmp/install/dist
RUN python -m venv /opt/llmswitch \
 && PYTHON=/opt/llmswitch/bin/python sh /tmp/install/install.sh install /tmp/install/dist /tmp/install/lock.txt \
 && rm -rf /tmp/install \
 && groupadd --system --gid 10001 llmswitch \
 && useradd --system --uid 10001 --gid llmswitch --home-dir /app --create-home --shell /usr/sbin/nologin llmswitch
# /app is the working directory: the config is mounted at /app/config.yaml, and without a database_url
# the SQLite store (llmswitch.db) and the spend journal (llmswitch-journal/) are written here.
WORKDIR /app
USER llmswitch
EXPOSE 4000
# the slim image has no curl: ask the liveness route with the venv's Python
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4000/health/liveliness', timeout=4)"]
ENTRYPOINT ["llmswitch"]
CMD ["serve", "--config", "/app/config.yaml", "--host", "0.0.0.0", "--port", "4000"]
