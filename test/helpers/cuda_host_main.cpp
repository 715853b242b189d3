// cuda_host_main.cpp: the runner of rendered CUDA kernels compiled as host C++ (cuda_host_shim.h).
// Reads launches from argv[1], runs each, writes each launch's output buffer to argv[2].
// File format, little-endian u32 fields: count, then per launch: name length, name, grid, block,
// blockSync, buffer count, then per buffer its byte length and bytes (buffer 0, the output, starts zeroed
// and is written back). A kernel with __syncthreads runs each block's threads as fibers that meet at
// its barriers; the others run their threads one after another in loops.
#include "cuda_host_shim.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#define START_SWITCH(fake, bottom, size) __sanitizer_start_switch_fiber(fake, bottom, size)
#define FINISH_SWITCH(fake, bottom, size) __sanitizer_finish_switch_fiber(fake, bottom, size)
#else
#define START_SWITCH(fake, bottom, size) ((void)(fake), (void)(bottom), (void)(size))
#define FINISH_SWITCH(fake, bottom, size) ((void)(fake), (void)(bottom), (void)(size))
#endif
#include <ucontext.h>
#include <vector>

thread_local kiln_dim3 threadIdx, blockIdx;
kiln_dim3 blockDim, gridDim;

// ---- a block's threads as fibers: __syncthreads switches back to the scheduler, which runs every
// thread of the block up to its next barrier before it lets any go past it. NOTE: fibers, not OS threads:
// 256 OS threads meeting at a barrier cost a context switch each, minutes for a few thousand blocks.
// ASan is told about every stack switch, or it would take the fibers' stacks for overflows.
static const size_t FIBER_STACK = 256 << 10;
static ucontext_t sched_ctx;
static std::vector<ucontext_t> fibers;
static std::vector<std::vector<char>> stacks;
static std::vector<char> done;
static unsigned current = 0;
static bool in_fibers = false;
static kiln_shim_call fiber_call;
static void** fiber_bufs;
static const unsigned* fiber_sizes;
static const void* sched_bottom;
static size_t sched_size;

static void to_scheduler(bool exiting) {
  void* fake = nullptr;
  START_SWITCH(exiting ? nullptr : &fake, sched_bottom, sched_size);
  swapcontext(&fibers[current], &sched_ctx);
  FINISH_SWITCH(fake, &sched_bottom, &sched_size);
}

void kiln_shim_syncthreads() {
  if (!in_fibers) { fprintf(stderr, "__syncthreads in a kernel launched without blockSync\n"); exit(3); }
  to_scheduler(false);
}

static void fiber_main() {
  FINISH_SWITCH(nullptr, &sched_bottom, &sched_size);
  fiber_call(fiber_bufs, fiber_sizes);
  done[current] = 1;
  to_scheduler(true);
}

static void run_block_as_fibers(unsigned block) {
  fibers.resize(block);
  stacks.resize(block);
  done.assign(block, 0);
  for (unsigned t = 0; t < block; t++) {
    stacks[t].resize(FIBER_STACK);
    getcontext(&fibers[t]);
    fibers[t].uc_stack.ss_sp = stacks[t].data();
    fibers[t].uc_stack.ss_size = FIBER_STACK;
    fibers[t].uc_link = nullptr;
    makecontext(&fibers[t], fiber_main, 0);
  }
  in_fibers = true;
  for (unsigned left = block; left > 0;) {
    for (unsigned t = 0; t < block; t++) {
      if (done[t]) continue;
      current = t;
      threadIdx = {t, 0, 0};
      void* fake = nullptr;
      START_SWITCH(&fake, stacks[t].data(), FIBER_STACK);
      swapcontext(&sched_ctx, &fibers[t]);
      FINISH_SWITCH(fake, nullptr, nullptr);
      if (done[t]) left--;
    }
  }
  in_fibers = false;
}

static std::map<std::string, kiln_shim_call>& registry() {
  static std::map<std::string, kiln_shim_call> r;
  return r;
}
void kiln_shim_register(const char* name, kiln_shim_call call) { registry()[name] = call; }

static FILE* in;
static uint32_t u32() {
  uint32_t v;
  if (fread(&v, 4, 1, in) != 1) { fprintf(stderr, "launch file ends early\n"); exit(2); }
  return v;
}

int main(int argc, char** argv) {
  if (argc != 3) { fprintf(stderr, "usage: %s launches.bin outputs.bin\n", argv[0]); return 2; }
  in = fopen(argv[1], "rb");
  FILE* out = fopen(argv[2], "wb");
  if (!in || !out) { perror("open"); return 2; }
  const uint32_t count = u32();
  for (uint32_t l = 0; l < count; l++) {
    std::string name(u32(), '\0');
    if (fread(name.data(), 1, name.size(), in) != name.size()) { fprintf(stderr, "launch file ends early\n"); return 2; }
    const uint32_t grid = u32(), block = u32(), sync = u32(), nbufs = u32();
    // Each buffer on its own allocation, 16-byte aligned, so a read past its end is caught by ASan.
    std::vector<void*> bufs(nbufs);
    std::vector<uint32_t> sizes(nbufs);
    for (uint32_t b = 0; b < nbufs; b++) {
      sizes[b] = u32();
      bufs[b] = aligned_alloc(16, (sizes[b] + 15) / 16 * 16 + 16);
      memset(bufs[b], 0, sizes[b]);
      if (fread(bufs[b], 1, sizes[b], in) != sizes[b]) { fprintf(stderr, "launch file ends early\n"); return 2; }
    }
    auto it = registry().find(name);
    if (it == registry().end()) { fprintf(stderr, "no kernel %s in this build\n", name.c_str()); return 2; }
    const kiln_shim_call call = it->second;
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    if (!sync) {
      for (uint32_t g = 0; g < grid; g++)
        for (uint32_t t = 0; t < block; t++) {
          blockIdx = {g, 0, 0};
          threadIdx = {t, 0, 0};
          call(bufs.data(), sizes.data());
        }
    } else {
      fiber_call = call;
      fiber_bufs = bufs.data();
      fiber_sizes = sizes.data();
      for (uint32_t g = 0; g < grid; g++) {
        blockIdx = {g, 0, 0};
        run_block_as_fibers(block);
      }
    }
    fwrite(&sizes[0], 4, 1, out);
    fwrite(bufs[0], 1, sizes[0], out);
    for (void* b : bufs) free(b);

  }
  return fclose(out) == 0 ? 0 : 2;
}
