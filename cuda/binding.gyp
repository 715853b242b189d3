# The native addon (kiln_cuda.node), built by `npm run build:cuda` (cuda/build.mjs), never by `npm ci`.
# It dlopens the CUDA libraries at run time, so it links none of them.
{
  "targets": [
    {
      "target_name": "kiln_cuda",
      "sources": ["src/kiln_cuda.cc", "src/driver.cc", "src/nvrtc.cc", "src/cublaslt.cc", "src/nccl.cc"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "libraries": ["-ldl"]
    }
  ]
}
