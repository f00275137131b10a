# ChatbotWS: one process (eventlet by default) serving the page and Socket.IO on port 5000.
# The local model's runtime (llama-cpp-python) is compiled in a builder stage; the final image has no compiler.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
# Portable CPU code (not -march=native of the build host): x86-64 with AVX2/FMA, what servers of the last decade run.
# On other CPUs build with --build-arg LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF".
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
COPY requirements-local.txt ./
RUN CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip wheel --no-deps --wheel-dir /wheels -r requirements-local.txt

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libgomp1: the OpenMP runtime llama.cpp's CPU code links against (a library, not a compiler).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
RUN useradd --create-home --uid 10001 chatbot

COPY requirements.txt ./
RUN pip install -r requirements.txt
COPY --from=builder /wheels /wheels
RUN pip install --no-deps --no-index /wheels/*.whl && rm -rf /wheels

COPY app.py ./
COPY chatbot ./chatbot
COPY templates ./templates
COPY static ./static
RUN mkdir -p /app/instance && chown chatbot:chatbot /app/instance

USER chatbot
# Listen on every interface inside the container; publish the port with `docker run -p`.
ENV HOST=0.0.0.0 \
    PORT=5000
EXPOSE 5000
VOLUME ["/app/instance"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/healthz', timeout=4)"
CMD ["python", "app.py"]
