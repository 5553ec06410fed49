// Sampling on the GPU (sampling.h): one block per row, the row read from L2 in a few passes, never
// sorted. The CPU sampler keeps a prefix of the tokens in descending order of logit; here that
// prefix is described by thresholds on an order-preserving 32-bit key of each token's (penalized)
// logit, found by radix select over 2048-bin histograms in shared memory:
//   top-k: the k-th largest key (counts; every tie with it stays, as on the CPU);
//   top-p: the key where the mass from the top first reaches top_p. Float histograms guide the
//          search; one exact pass in double checks the cut, and a search with double histograms
//          redoes it in the rare case rounding misled the guide. A cut inside a group of equal
//          logits keeps the lowest ids, as the CPU's stable sort does;
//   min-p: E >= min_p with E = exp(l - l_max) (the CPU's e_k / mass >= min_p * e_0 / mass).
// The draw scans the kept tokens in id order, as the CPU does: each thread sums a contiguous run
// of ids, a block scan finds the run where u * mass is crossed, and one warp scans that run.
// The repetition penalty is a bitmap of the penalized ids in shared memory, applied whenever a
// logit is read. Probabilities below exp(-46) of the top one are taken as zero: they cannot move a
// double sum that holds the top token's 1.
//
// A row is one thread-block cluster of CL = 16, 8 or 2 blocks on sm_90 (the largest of which every
// row gets one at once), else one block: block `rank` reads the contiguous ids [lo, hi), and every
// reduction, histogram and id-order scan is finished across the cluster through distributed shared
// memory. Every block
// adds the cluster's values in rank order, so all of them take the same decisions (bit for bit),
// and the passes over the row run on CL SMs: one SM alone took 161 us for a temperature draw and
// 675 us for top-p at a 128k vocabulary, most of it fp64 exp.
#include <algorithm>
#include <climits>
#include <utility>

#include "ops/cuda/cluster.cuh"
#include "ops/cuda/common.cuh"
#include "ops/cuda/sampling.h"

namespace nibble::cuda {
namespace {

constexpr int kThreads = 512, kWarps = kThreads / 32, kBins = 2048;
constexpr int kMaxVocab = 1 << 20;
constexpr float kNegligible = -46.0f;  // exp(-46) < 2^-66

// Larger float -> larger key; -0 and +0 share one.
__device__ __forceinline__ uint32_t float_key(float f) {
  if (f == 0.0f) f = 0.0f;
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <class T, class Op>
__device__ T block_reduce(T v, Op op, T* tmp) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if ((threadIdx.x & 31) == 0) tmp[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = tmp[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, tmp[w]);  // same order in every thread
  __syncthreads();
  return r;
}
struct Sum {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
  template <class T>
  __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct Min {
  template <class T>
  __device__ T operator()(T a, T b) const { return a < b ? a : b; }
};

struct RowCtx {
  const float* logits;
  int vocab;
  const uint32_t* bitmap;  // shared: penalized ids
  bool has_pen;
  double pen;
  double t;       // temperature
  double lmax_t;  // l_max / t: the CPU's mx
  float vmax_f, inv_t_f;
  __device__ double value(int i) const {  // the penalized logit, in double as the CPU
    double v = __ldg(logits + i);
    if (has_pen && ((bitmap[i >> 5] >> (i & 31)) & 1u)) v = v > 0 ? v / pen : v * pen;
    return v;
  }
  __device__ float log_e_approx(double v) const { return (static_cast<float>(v) - vmax_f) * inv_t_f; }
  // exp(l - mx) with l = v / t, as the CPU computes it; 0 when negligible.
  __device__ double e(double v) const { return log_e_approx(v) < kNegligible ? 0.0 : exp(v / t - lmax_t); }
};

struct Shared {
  union {  // one histogram at a time, this block's tokens only
    uint32_t cnt[kBins];
    float fmass[kBins];
    double dmass[kBins];
    struct {
      double mass[1024];
      uint32_t cnt[1024];
    } win;  // top-p's exact window
  };
  double tot[kBins];  // the cluster's histogram (all blocks', in rank order); the window: mass, then counts
  double d[kWarps];
  int i32[kWarps];
  uint32_t u32[kWarps];
  double xd;  // this block's share of a cluster reduction, read by the other blocks
  int xi;
  int bin;
  double above;
  bool reached;
  int found;
  double carry;
};

// The cluster helpers (cl_sync, cl_at, cl_rank) are in cluster.cuh.
__device__ __forceinline__ double& xslot(Shared& sh, double) { return sh.xd; }
__device__ __forceinline__ int& xslot(Shared& sh, int) { return sh.xi; }

// Thread 0's v of each block of the cluster, in rank order: f(q, block q's v) in every thread.
// Called by every thread, after a block barrier. (One slot and two barriers: two slots used in
// turn with one barrier measured the same, 31.2 against 31.5 us.)
template <int CL, class T, class F>
__device__ void cluster_each(T v, Shared& sh, F f) {
  T& slot = xslot(sh, T{});
  if (threadIdx.x == 0) slot = v;
  cl_sync<CL>();
  for (int q = 0; q < CL; ++q) f(q, *cl_at<CL>(&slot, q));
  cl_sync<CL>();  // nobody overwrites its slot before every block has read it
}

// op over every thread of the cluster; the same value, bit for bit, in all of them.
template <int CL, class T, class Op>
__device__ T cluster_reduce(T v, Op op, T* tmp, Shared& sh) {
  v = block_reduce(v, op, tmp);
  // cluster_each publishes a copy of v before the lambda overwrites it with the cluster's result.
  if constexpr (CL > 1) cluster_each<CL>(v, sh, [&](int q, T x) { v = q == 0 ? x : op(v, x); });
  return v;
}

// sh.tot[b] = the sum over the cluster's blocks (in rank order) of get(block's Shared, b), b < nb.
// Called by every thread after the block's histogram is complete; the histograms may be reset
// after it returns.
template <int CL, class Get>
__device__ void cluster_bins(int nb, Get get, Shared& sh) {
  cl_sync<CL>();
  for (int b = threadIdx.x; b < nb; b += kThreads) {
    double s = 0;
#pragma unroll 4  // all 16 of a 16-block cluster at once spill
    for (int q = 0; q < CL; ++q) s += get(*cl_at<CL>(&sh, q), b);
    sh.tot[b] = s;
  }
  cl_sync<CL>();
}

enum class Weight { kCount, kMassFloat, kMassExact };

// Warp 0 scans bins [0, nb) from the top and finds the first (descending) where the running
// weight reaches need: sh.bin, sh.above (the weight of the bins above it), sh.reached. When
// rounding leaves the need above the total, it takes the lowest nonempty bin (reached = false).
template <class Wt>
__device__ void scan_bins_desc(int nb, Wt weight, double need, Shared& sh) {
  const int lane = threadIdx.x & 31;
  if (threadIdx.x >= 32) return;
  const int per = nb / 32, hi = nb - lane * per;  // lane 0 holds the highest nb / 32
  double sum = 0;
  for (int b = hi - per; b < hi; ++b) sum += weight(b);
  double incl = sum;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const double up = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += up;
  }
  const uint32_t cross = __ballot_sync(0xffffffffu, incl >= need && sum > 0);
  const uint32_t nonempty = __ballot_sync(0xffffffffu, sum > 0);
  const int sel = cross ? __ffs(cross) - 1 : (nonempty ? 31 - __clz(nonempty) : 0);
  if (lane == sel) {
    double acc = incl - sum, acc_at = acc;
    int bin = hi - 1;
    for (int b = hi - 1; b >= hi - per; --b) {
      const double w = weight(b);
      if (w == 0) continue;
      bin = b;
      acc_at = acc;
      if (cross && acc + w >= need) break;
      acc += w;
    }
    sh.bin = bin;
    sh.above = acc_at;
    sh.reached = cross != 0;
  }
}

// Threshold key T over the tokens with key >= floor: the tokens with key > T weigh < need and
// those with key >= T weigh >= need (weight 1, or E). Count mode may stop early with a lower
// bound T when a whole bin is needed (key >= T is then the same set). With need_frac > 0 the
// need is need_frac * S, S = sum of E over key >= floor, summed in double during the first pass
// (returned through s_out).
template <int CL, Weight W>
__device__ uint32_t radix_select(const RowCtx& c, int lo, int hi, uint32_t floor_key, double need, Shared& sh,
                                 double need_frac = 0.0, double* s_out = nullptr) {
  const int tid = threadIdx.x, lane = tid & 31;
  uint32_t prefix = 0, mask = 0;
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = pass == 0 ? 21 : pass == 1 ? 10 : 0;
    const int nb = pass == 2 ? 1024 : 2048;
    for (int b = tid; b < nb; b += kThreads) {
      if (W == Weight::kCount) sh.cnt[b] = 0;
      if (W == Weight::kMassFloat) sh.fmass[b] = 0.0f;
      if (W == Weight::kMassExact) sh.dmass[b] = 0.0;
    }
    __syncthreads();
    const bool sum_s = pass == 0 && need_frac > 0;
    double s = 0;
    for (int base = lo; base < hi; base += kThreads) {  // warp-uniform trip count
      const int i = base + tid;
      int bin = -1;
      double v = 0;
      if (i < hi) {
        v = c.value(i);
        const uint32_t key = float_key(static_cast<float>(v));
        if (key >= floor_key && (key & mask) == prefix) bin = (key >> shift) & (nb - 1);
      }
      if (W == Weight::kCount) {
        // Warp-aggregated: the first pass puts most tokens in a few bins.
        const uint32_t peers = __match_any_sync(0xffffffffu, bin);
        if (bin >= 0 && lane == __ffs(peers) - 1) atomicAdd(&sh.cnt[bin], static_cast<uint32_t>(__popc(peers)));
      } else if (W == Weight::kMassFloat) {
        if (bin >= 0) {
          const float x = c.log_e_approx(v);
          if (x >= kNegligible) atomicAdd(&sh.fmass[bin], __expf(x));
          if (sum_s) s += c.e(v);
        }
      } else {
        if (bin >= 0) {
          const double e = c.e(v);
          if (e > 0) atomicAdd(&sh.dmass[bin], e);
          if (sum_s) s += e;
        }
      }
    }
    if (sum_s) {
      s = cluster_reduce<CL>(s, Sum{}, sh.d, sh);
      need = need_frac * s;
      if (s_out) *s_out = s;
    }
    cluster_bins<CL>(
        nb,
        [](const Shared& q, int b) -> double {
          if (W == Weight::kCount) return q.cnt[b];
          if (W == Weight::kMassFloat) return q.fmass[b];
          return q.dmass[b];
        },
        sh);
    scan_bins_desc(nb, [&](int b) -> double { return sh.tot[b]; }, need, sh);
    __syncthreads();
    const int bin = sh.bin;
    const double in_bin = W == Weight::kCount ? sh.tot[bin] : 0.0;
    need -= sh.above;
    prefix |= static_cast<uint32_t>(bin) << shift;
    mask |= static_cast<uint32_t>(nb - 1) << shift;
    __syncthreads();
    if (W == Weight::kCount && need >= in_bin) break;  // every token of the bin stays
  }
  return prefix;
}

// Sums f(i) > 0 in id order and finds the first id whose running sum exceeds need_scale * total +
// need_add. Each thread sums a contiguous run of ids; a block scan finds the run that crosses; one
// warp scans that run. Returns the id (or -1 when the need is not crossed); total and the last id
// with f > 0 through the pointers.
// With a cluster, the blocks' totals in rank order place each block's run of ids, and the first
// block whose ids cross finds the id; the cluster takes the lowest such id.
template <int CL, class F>
__device__ int ordered_find(int lo, int hi, F f, double need_scale, double need_add, Shared& sh, double* total_out,
                            int* last_out) {
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int run = (hi - lo + kThreads - 1) / kThreads;
  const int tlo = min(lo + tid * run, hi), thi = min(tlo + run, hi);
  double sum = 0;
  int last = -1;
  for (int i = tlo; i < thi; ++i) {
    const double e = f(i);
    if (e > 0) {
      sum += e;
      last = i;
    }
  }
  double incl = sum;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const double up = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += up;
  }
  if (lane == 31) sh.d[warp] = incl;
  if (tid == 0) sh.found = INT_MAX;
  __syncthreads();
  double before = 0, block_total = 0;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += sh.d[w];
    block_total += sh.d[w];
  }
  double total = block_total;
  if constexpr (CL > 1) {  // the blocks before this one, and the row's total
    const int rank = cl_rank<CL>();
    total = 0;
    cluster_each<CL>(block_total, sh, [&](int q, double t) {
      if (q < rank) before += t;
      total += t;
    });
  }
  const double excl = before + incl - sum;
  const double need = need_scale * total + need_add;
  if (sum > 0 && excl + sum > need) atomicMin(&sh.found, tid);
  __syncthreads();
  const int ct = sh.found;
  if (tid == ct) sh.carry = excl;
  last = cluster_reduce<CL>(last, Max{}, sh.i32, sh);  // its barriers publish sh.carry
  *total_out = total;
  *last_out = last;
  if (ct != INT_MAX && warp == 0) {
    const int rlo = lo + ct * run, rhi = min(rlo + run, hi);
    double carry = sh.carry;
    int hit = -1, last_pos = -1;
    for (int b = rlo; b < rhi && hit < 0; b += 32) {
      const int i = b + lane;
      const double e = i < rhi ? f(i) : 0.0;
      double in = e;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const double up = __shfl_up_sync(0xffffffffu, in, o);
        if (lane >= o) in += up;
      }
      const uint32_t crossed = __ballot_sync(0xffffffffu, e > 0 && carry + in > need);
      const uint32_t pos = __ballot_sync(0xffffffffu, e > 0);
      if (pos) last_pos = b + 31 - __clz(pos);
      if (crossed) hit = b + __ffs(crossed) - 1;
      carry += __shfl_sync(0xffffffffu, in, 31);
    }
    if (lane == 0) sh.found = hit >= 0 ? hit : last_pos;  // rounding between the two sums: the run's last
  }
  __syncthreads();
  const int r = cluster_reduce<CL>(sh.found, Min{}, sh.i32, sh);  // INT_MAX where no block crossed
  return r == INT_MAX ? -1 : r;
}

template <int CL>
__global__ void __launch_bounds__(kThreads, 1) sample_kernel(const float* logits, int vocab,
                                                             const SampleRowParams* params, const int32_t* history,
                                                             const int32_t* history_offsets, const double* uniforms,
                                                             int32_t* out) {
  extern __shared__ uint32_t bitmap[];
  __shared__ Shared sh;
  const int row = blockIdx.x / CL, rank = cl_rank<CL>(), tid = threadIdx.x;
  const SampleRowParams P = params[row];
  // This block's ids (whole warps' worth, so that the blocks' runs meet at multiples of 32).
  const int chunk = ((vocab + CL - 1) / CL + 31) & ~31;
  const int lo = min(rank * chunk, vocab), hi = min(lo + chunk, vocab);

  RowCtx c;
  c.logits = logits + static_cast<size_t>(row) * vocab;
  c.vocab = vocab;
  c.bitmap = bitmap;
  c.pen = P.repeat_penalty;
  c.has_pen = false;
  if (P.repeat_penalty != 1.0f && history && history_offsets && P.repeat_last_n != 0) {
    int hb = history_offsets[row];
    const int he = history_offsets[row + 1];
    if (P.repeat_last_n > 0) hb = max(hb, he - P.repeat_last_n);
    if (he > hb) {
      c.has_pen = true;
      for (int w = tid; w < (vocab + 31) / 32; w += kThreads) bitmap[w] = 0;
      __syncthreads();
      for (int h = hb + tid; h < he; h += kThreads) {
        const int id = history[h];
        if (id >= 0 && id < vocab) atomicOr(&bitmap[id >> 5], 1u << (id & 31));
      }
      __syncthreads();
    }
  }

  // The maximum and the first id holding it: greedy's answer and the top of the sorted order.
  double vmax = -INFINITY;
  int top = INT_MAX;
  for (int i = lo + tid; i < hi; i += kThreads) {
    const double v = c.value(i);
    if (v > vmax) {  // ids rise within a thread: its first maximum stays
      vmax = v;
      top = i;
    }
  }
  vmax = cluster_reduce<CL>(vmax, Max{}, sh.d, sh);
  top = cluster_reduce<CL>(top != INT_MAX && c.value(top) == vmax ? top : INT_MAX, Min{}, sh.i32, sh);
  if (top == INT_MAX) top = 0;  // NaN everywhere
  if (P.temperature <= 0.0f) {
    if (rank == 0 && tid == 0) out[row] = top;
    return;
  }
  c.t = P.temperature;
  c.lmax_t = vmax / c.t;
  c.vmax_f = static_cast<float>(vmax);
  c.inv_t_f = 1.0f / P.temperature;

  // top-k: keep key >= tk.
  uint32_t tk = 0;
  if (P.top_k > 0 && P.top_k < vocab) tk = radix_select<CL, Weight::kCount>(c, lo, hi, 0u, P.top_k, sh);

  // top-p: keep key > tp, and the ids <= id_cut of the tokens whose key == tp.
  uint32_t tp = tk;
  int id_cut = INT_MAX;
  if (P.top_p < 1.0f) {
    const double top_p = P.top_p;
    double s = 0;  // the CPU's softmax denominator over the top-k survivors
    tp = radix_select<CL, Weight::kMassFloat>(c, lo, hi, tk, 0.0, sh, top_p, &s);
    const double target = top_p * s;
    // Exact check, in double, over the 1024 keys around the guide's cut: the cut is the first key
    // (descending) where the mass from the top reaches top_p * s. Float rounding moves the guide by
    // a few keys at most; if the cut still lies outside the window, search again exactly.
    double a = 0, at = 0;
    int nt = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      const uint32_t win_lo = tp & ~1023u, win_hi = tp | 1023u;
      for (int b = tid; b < 1024; b += kThreads) {
        sh.win.mass[b] = 0.0;
        sh.win.cnt[b] = 0;
      }
      __syncthreads();
      double above = 0;
      for (int i = lo + tid; i < hi; i += kThreads) {
        const double v = c.value(i);
        const uint32_t key = float_key(static_cast<float>(v));
        if (key < tk || key < win_lo) continue;
        const double e = c.e(v);
        if (key > win_hi) {
          above += e;
        } else {
          if (e > 0) atomicAdd(&sh.win.mass[key - win_lo], e);
          atomicAdd(&sh.win.cnt[key - win_lo], 1u);
        }
      }
      above = cluster_reduce<CL>(above, Sum{}, sh.d, sh);
      cluster_bins<CL>(
          2048, [](const Shared& q, int b) -> double { return b < 1024 ? q.win.mass[b] : q.win.cnt[b - 1024]; }, sh);
      if (above < target) {
        scan_bins_desc(1024, [&](int b) -> double { return sh.tot[b]; }, target - above, sh);
        __syncthreads();
        if (sh.reached) {
          tp = win_lo + sh.bin;
          a = above + sh.above;
          at = sh.tot[sh.bin];
          nt = static_cast<int>(sh.tot[1024 + sh.bin]);
          __syncthreads();
          break;
        }
      }
      __syncthreads();
      if (attempt == 0) tp = radix_select<CL, Weight::kMassExact>(c, lo, hi, tk, target, sh);
    }
    // Inside the group at tp (equal logits, in id order on the CPU), keep the first n ids.
    if (nt > 1) {
      const double et = at / nt;
      const int n = static_cast<int>(fmin(fmax(ceil((target - a) / et), 1.0), static_cast<double>(nt)));
      if (n < nt) {
        double total;
        int last;
        const int hit = ordered_find<CL>(
            lo, hi, [&](int i) { return float_key(static_cast<float>(c.value(i))) == tp ? 1.0 : 0.0; }, 0.0, n - 0.5,
            sh, &total, &last);
        id_cut = hit >= 0 ? hit : INT_MAX;
      }
    }
  }

  const double min_p = P.min_p;
  auto kept_e = [&](int i) -> double {  // E of token i if it survives every filter, else 0
    const double v = c.value(i);
    const uint32_t key = float_key(static_cast<float>(v));
    if (key < tk || key < tp || (key == tp && i > id_cut)) return 0.0;
    if (i == top) return 1.0;
    const double e = c.e(v);
    if (min_p > 0 && !(e >= min_p)) return 0.0;
    return e;
  };
  // The draw: the first id, in id order, whose cumulative mass exceeds u * mass.
  double mass;
  int last;
  const int hit = ordered_find<CL>(lo, hi, kept_e, uniforms[row], 0.0, sh, &mass, &last);
  if (rank == 0 && tid == 0) out[row] = hit >= 0 ? hit : (last >= 0 ? last : top);
}

// The better of two (value, id) candidates: larger value, then lower id (std::max_element).
__device__ __forceinline__ void better_of(float& best, int& idx, float v, int i) {
  if (v > best || (v == best && i < idx)) {
    best = v;
    idx = i;
  }
}

// Block (part, row) finds the maximum of its run of the row's logits; with several parts the last
// block of the row to finish picks among their candidates in part order (one block alone read a
// 128k vocabulary in 24 us, the step's third largest kernel at batch 1).
__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ logits, int vocab, int per_part,
                                                          float* ws_v, int* ws_i, int* counters, int32_t* out) {
  pdl_wait();  // launched with launch_pdl: see common.cuh
  pdl_trigger();
  __shared__ float sf[kWarps];
  __shared__ int si[kWarps];
  __shared__ bool last;
  const int row = blockIdx.y, part = blockIdx.x, parts = gridDim.x;
  const float* x = logits + static_cast<size_t>(row) * vocab;
  const int end = min(vocab, (part + 1) * per_part);
  float best = -INFINITY;
  int idx = INT_MAX;
#pragma unroll 8
  for (int i = part * per_part + threadIdx.x; i < end; i += kThreads) {
    const float v = __ldg(x + i);
    if (v > best) {  // ids rise within a thread: the first maximum stays
      best = v;
      idx = i;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) better_of(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
  if ((threadIdx.x & 31) == 0) {
    sf[threadIdx.x >> 5] = best;
    si[threadIdx.x >> 5] = idx;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  best = sf[0];
  idx = si[0];
  for (int w = 1; w < kWarps; ++w) better_of(best, idx, sf[w], si[w]);
  if (parts > 1) {
    ws_v[row * parts + part] = best;
    ws_i[row * parts + part] = idx;
    __threadfence();
    last = atomicAdd(counters + row, 1) == parts - 1;
    if (!last) return;
    __threadfence();
    best = -INFINITY;
    idx = INT_MAX;
    for (int p = 0; p < parts; ++p) better_of(best, idx, __ldcg(ws_v + row * parts + p), __ldcg(ws_i + row * parts + p));
    counters[row] = 0;  // left at zero for the next user of the scratch
  }
  out[row] = idx == INT_MAX ? 0 : idx;
}

// The launch of `rows` rows of CL blocks (a cluster each when CL > 1).
template <int CL>
cudaLaunchConfig_t sample_config(int rows, size_t smem, cudaStream_t stream, cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(rows * CL);
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  *attr = cluster_dim_attr(CL);
  if (CL > 1) {
    cfg.attrs = attr;
    cfg.numAttrs = 1;
  }
  return cfg;
}

// Raised once to the largest vocab's bitmap, so that no call happens under graph capture; 16 blocks
// is a non-portable cluster size, allowed once too.
template <int CL>
cudaError_t allow_bitmap() {
  static const cudaError_t allowed = [] {
    cudaError_t e = cudaFuncSetAttribute(sample_kernel<CL>, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxVocab / 8);
    if (e == cudaSuccess && CL > 8) e = cudaFuncSetAttribute(sample_kernel<CL>, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    return e;
  }();
  return allowed;
}

// How many clusters of CL sampling blocks the device runs at once (0: none, e.g. a MIG slice or
// GPCs with SMs disabled for 16), at the largest bitmap; asked once (one GPU model per process
// assumed). Clusters of 16 need a GPC with 16 free SMs: fewer of them fit than SMs / 16.
template <int CL>
int active_clusters() {
  static const int n = [] {
    if (allow_bitmap<CL>() != cudaSuccess) return 0;
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t cfg = sample_config<CL>(1, kMaxVocab / 8, nullptr, &attr);
    int clusters = 0;
    if (cudaOccupancyMaxActiveClusters(&clusters, sample_kernel<CL>, &cfg) != cudaSuccess) clusters = 0;
    cudaGetLastError();  // a refusal is an answer, not an error for the next call
    return clusters;
  }();
  return n;
}

template <int CL>
Status launch_sample(const float* logits, int rows, int vocab, const SampleRowParams* params, const int32_t* history,
                     const int32_t* history_offsets, const double* u, int32_t* out, Stream& s) {
  NB_TRY(cuda_status(allow_bitmap<CL>(), "sample_rows: shared memory limit"));
  cudaLaunchAttribute attr;
  const cudaLaunchConfig_t cfg = sample_config<CL>(rows, static_cast<size_t>((vocab + 31) / 32) * 4, s.get(), &attr);
  return cuda_status(cudaLaunchKernelEx(&cfg, sample_kernel<CL>, logits, vocab, params, history, history_offsets, u, out),
                     "sample_rows");
}

}  // namespace

Status argmax_rows(const float* logits, int rows, int vocab, int32_t* out, Stream& s) {
  if (vocab <= 0) return Status::invalid("argmax_rows: vocab must be > 0, got {}", vocab);
  if (rows > 65535) return Status::unsupported("argmax_rows: at most 65535 rows, got {}", rows);
  // ~4k logits a block (8 loads a thread in flight), at most 64 blocks a row.
  const int parts = std::min(64, (vocab + 4095) / 4096), per_part = (vocab + parts - 1) / parts;
  float* ws = nullptr;
  int* counters = nullptr;
  if (parts > 1) NB_TRY(s.scratch(static_cast<size_t>(rows) * parts * 2 * sizeof(float), rows, &ws, &counters));
  int* ws_i = ws ? reinterpret_cast<int*>(ws + static_cast<size_t>(rows) * parts) : nullptr;
  return launch_pdl("argmax_rows", argmax_kernel, dim3(parts, rows), dim3(kThreads), 0, s, logits, vocab, per_part, ws,
                    ws_i, counters, out);
}

Status sample_rows(const float* logits, int rows, int vocab, const SampleRowParams* params, const int32_t* history,
                   const int32_t* history_offsets, const double* u, int32_t* out, Stream& s, int blocks_per_row) {
  if (vocab <= 0 || vocab > kMaxVocab)
    return Status::unsupported("sample_rows: vocab must be 1..{}, got {}", kMaxVocab, vocab);
  if (rows <= 0) return Status::ok();
  const bool clusters = s.info().cc_major >= 9;
  if (blocks_per_row != 0 && blocks_per_row != 1 && blocks_per_row != 2 && blocks_per_row != 8 && blocks_per_row != 16)
    return Status::invalid("sample_rows: blocks_per_row must be 0, 1, 2, 8 or 16, got {}", blocks_per_row);
  if (blocks_per_row > 1 && !clusters)
    return Status::unsupported("sample_rows: {} blocks a row need thread-block clusters (sm_90), this device is sm_{}{}",
                               blocks_per_row, s.info().cc_major, s.info().cc_minor);
  auto active = [](int cl) {
    return cl == 16 ? active_clusters<16>() : cl == 8 ? active_clusters<8>() : cl == 2 ? active_clusters<2>() : 1 << 30;
  };
  if (blocks_per_row > 1 && active(blocks_per_row) == 0)
    return Status::unsupported("sample_rows: this device cannot run a cluster of {} sampling blocks", blocks_per_row);
  // Automatic: the fewest waves of clusters weighted by a wave's time against one block a row's,
  // as measured on an H200 (128k vocabulary, T 0.7 / top-p: 16 blocks 0.16, 8 0.19-0.20, 2 0.50-0.53;
  // docs/kernels.md "Sampling"). Batch 16 needs two waves of 8-block clusters (fewer than 16 fit at
  // once on an H200), still faster than one of 2-block ones (top-p 0.25 against 0.47 ms a step).
  int cl = blocks_per_row;
  if (cl == 0) {
    cl = 1;
    double best = (rows + s.info().sm_count - 1) / s.info().sm_count;  // one block a SM
    for (const auto& [c, rel] : {std::pair{16, 0.16}, std::pair{8, 0.2}, std::pair{2, 0.5}}) {
      const int n = clusters ? active(c) : 0;
      if (n == 0) continue;
      const double cost = (rows + n - 1) / n * rel;
      if (cost < best) {
        best = cost;
        cl = c;
      }
    }
  }
  switch (cl) {
    case 16: return launch_sample<16>(logits, rows, vocab, params, history, history_offsets, u, out, s);
    case 8: return launch_sample<8>(logits, rows, vocab, params, history, history_offsets, u, out, s);
    case 2: return launch_sample<2>(logits, rows, vocab, params, history, history_offsets, u, out, s);
    default: return launch_sample<1>(logits, rows, vocab, params, history, history_offsets, u, out, s);
  }
}

}  // namespace nibble::cuda
