# ChatbotWS: one process (gevent by default) serving the page and Socket.IO on $PORT (5000).
# The whole virtualenv (the app's requirements and the local model's runtime, llama-cpp-python, compiled here) is
# built in a builder stage and copied into the final image in one layer: no compiler and no leftover wheels in it.
#
# Build arguments:
#   BASE_IMAGE        the Python 3.11 base of both stages (default python:3.11-slim; scripts/docker_base.sh makes a
#                     stand-in from Debian packages where no registry answers)
#   LLAMA_CMAKE_ARGS  how llama.cpp is compiled (default: portable x86-64 with AVX2/FMA/F16C; see the README)
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The slow step (llama.cpp, ~20 min on two cores) first, so that a change to requirements.txt or to the code keeps it
# in Docker's layer cache.
# Portable CPU code (not -march=native of the build host): x86-64 with AVX2/FMA, what servers of the last decade run.
# For a CPU without AVX2 (or another architecture): --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF".
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
COPY requirements-local.txt ./
RUN CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install --no-deps -r requirements-local.txt
COPY requirements.txt ./
RUN pip install -r requirements.txt

FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgomp1: the OpenMP runtime llama.cpp's CPU code links against (a library, not a compiler).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 chatbot
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app
COPY app.py ./
COPY chatbot ./chatbot
COPY templates ./templates
COPY static ./static
# The only place the app writes (SQLite database, secret key): a volume, owned by the app's user. A host directory
# bind-mounted here must be writable by uid 10001 (see the README).
RUN mkdir -p /app/instance && chown chatbot:chatbot /app/instance

USER chatbot
# Listen on every interface inside the container; publish the port with `docker run -p`.
ENV HOST=0.0.0.0 \
    PORT=5000 \
    ASYNC_MODE=gevent
EXPOSE 5000
VOLUME ["/app/instance"]
# Shell form, so that the probe follows PORT when it is changed at `docker run`.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT:-5000}/healthz', timeout=4)" || exit 1
# app.py is PID 1: it handles SIGTERM (docker stop) itself, finishing or checkpointing the replies being streamed.
STOPSIGNAL SIGTERM
CMD ["python", "app.py"]
