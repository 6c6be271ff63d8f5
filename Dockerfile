# syntax=docker/dockerfile:1
# streamer's image: `docker build -t streamer .` then `docker run -e STREAMER_BOOTSTRAP_TOKEN=…
# -p 8080:8080 -v streamer-data:/var/lib/streamer streamer`. Two stages: the first installs the
# service and its dependencies (the exact versions in constraints.txt) into a virtualenv,
# compiling the format layer's C part, the second copies only that virtualenv onto a clean slim
# base and runs it as an unprivileged user. The build stage is the full image of the same Python
# and Debian release (it has the C compiler), so what it compiles runs on the slim one.

ARG PYTHON_IMAGE=python:3.11.14-slim-trixie
ARG BUILD_IMAGE=python:3.11.14-trixie

FROM ${BUILD_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CONSTRAINT=/src/constraints.txt
WORKDIR /src
RUN python -m venv /opt/streamer
COPY pyproject.toml setup.py constraints.txt README.md ./
COPY schemas ./schemas
COPY connectors ./connectors
COPY streamer ./streamer
RUN /opt/streamer/bin/pip install --no-cache-dir . \
    && /opt/streamer/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 streamer \
    && useradd --system --uid 10001 --gid streamer --no-create-home \
       --home-dir /var/lib/streamer --shell /usr/sbin/nologin streamer \
    && install --directory --owner=streamer --group=streamer --mode=0750 /var/lib/streamer
COPY --from=build /opt/streamer /opt/streamer
ENV PATH=/opt/streamer/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMER_LISTEN=0.0.0.0:8080 \
    STREAMER_DATA_DIR=/var/lib/streamer \
    STREAMER_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/streamer
VOLUME ["/var/lib/streamer"]
EXPOSE 8080
# The liveness endpoint on whatever port STREAMER_LISTEN names; the standard library only.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ['STREAMER_LISTEN'].rpartition(':')[2]; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health/live', timeout=4).status != 200)"]
ENTRYPOINT ["streamer"]
CMD ["run"]
