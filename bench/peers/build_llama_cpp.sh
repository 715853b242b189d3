#!/usr/bin/env bash
# build_llama_cpp.sh: builds llama.cpp's own CPU tools (llama-bench, llama-server), the real peers of
# `npm run bench:generate -- --peer llama-bench` and `npm run bench:serve:peer`. Never a dependency of
# kiln and never run by `npm test`: the benchmarks look for the binaries in $KILN_LLAMA_CPP_BIN, else
# ~/.cache/kiln-peers/llama.cpp/build/bin (bench/peers/llama_cpp_bin.ts), and say how to get them when absent.
#
#   bash bench/peers/build_llama_cpp.sh [SOURCE_DIR]     (default ~/.cache/kiln-peers/llama.cpp; about 20 min with -j2)
#
# How, per /work/shared/ENVIRONMENT.md ("Peers on these machines"): GitHub's ggml-org/llama.cpp is not
# reachable from these machines, the ngxson/llama.cpp mirror (its master follows upstream) is. Its snapshot
# lacks a few vocab blobs, so a plain clone aborts: clone with --no-checkout, then reset the index and
# check the files out from it. Configure offline (the web UI otherwise downloads at build time), Release,
# GGML_NATIVE (the SIMD of the machine it builds on: build on the machine that measures), and build only
# the two targets.
set -euo pipefail

SRC="${1:-$HOME/.cache/kiln-peers/llama.cpp}"
REPO="${KILN_LLAMA_CPP_REPO:-https://github.com/ngxson/llama.cpp}"
JOBS="${JOBS:-$(nproc)}"

if [ ! -e "$SRC/CMakeLists.txt" ]; then
  mkdir -p "$(dirname "$SRC")"
  git clone --no-checkout "$REPO" "$SRC"
  git -C "$SRC" reset -q
  git -C "$SRC" checkout-index -a -f
fi

cmake -S "$SRC" -B "$SRC/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF
cmake --build "$SRC/build" -j"$JOBS" --target llama-bench llama-server

echo "built: $(ls "$SRC/build/bin/llama-bench" "$SRC/build/bin/llama-server")"
echo "commit: $(git -C "$SRC" log -1 --format='%H %cs')"
