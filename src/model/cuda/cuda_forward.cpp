// Running a CudaModel: one forward call = one metadata copy, the layers' kernels (eagerly, or a
// captured decode graph replayed), and the logits or the picked token ids (argmax or sampled on
// the device) copied back.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <type_traits>

#include "model/cuda/cuda_kv_cache.h"
#include "model/cuda/cuda_model_impl.h"
#include "model/cuda/qkv_post.h"
#include "ops/cuda/elementwise.h"
#include "ops/cuda/sampling.h"

namespace nibble::cuda {
namespace {

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::ok();
  return Status::internal("CUDA {} failed: {}", what, cudaGetErrorString(e));
}

size_t align4(size_t n) { return (n + 3) & ~size_t(3); }  // int32 units, 16-byte sections

// Plain greedy rows everywhere: the argmax kernel (and the greedy decode graphs) suffice.
bool all_plain_greedy(std::span<const SampleRequest> rows) {
  return std::none_of(rows.begin(), rows.end(), [](const SampleRequest& q) { return ops::sampling_uses_draw(q.params); });
}

static_assert(sizeof(SampleRowParams) % 4 == 0 && sizeof(PrefillSeq) % 4 == 0);

// Where each metadata array sits in the one per-step buffer (int32 offsets; sections 16-byte
// aligned, so the doubles are too). When the step samples (n_sample = R rows), the rows'
// parameters, draws, history offsets and penalized history ids follow; the history comes last so
// that every other offset depends on (T, R, S, stride) alone, which a decode graph's key fixes:
// the graph stays valid while the histories grow.
struct MetaLayout {
  int T = 0, R = 0, S = 0, stride = 0;
  size_t tokens = 0, positions = 0, slots = 0, token_seq = 0, rows = 0, tables = 0, seqs = 0, total = 0;
  size_t params = 0, uniforms = 0, hist_offsets = 0, history = 0;
  MetaLayout(int t, int r, int s, int st, int n_sample = 0, size_t n_hist = 0) : T(t), R(r), S(s), stride(st) {
    size_t o = 0;
    auto take = [&](size_t n) { const size_t at = o; o += align4(n); return at; };
    tokens = take(T);
    positions = take(T);
    slots = take(T);
    token_seq = take(T);
    rows = take(R);
    tables = take(static_cast<size_t>(S) * stride);
    seqs = take(static_cast<size_t>(S) * sizeof(PrefillSeq) / 4);
    params = take(static_cast<size_t>(n_sample) * sizeof(SampleRowParams) / 4);
    uniforms = take(static_cast<size_t>(n_sample) * sizeof(double) / 4);
    hist_offsets = take(n_sample > 0 ? n_sample + 1 : 0);
    history = take(n_hist);
    total = o;
  }
};

// The attention parameters both kernels share (decode and prefill structs name them alike).
template <class P>
P attn_params(const ModelConfig& c, int block_size, int stride, int window) {
  P p;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.block_size = block_size;
  p.max_blocks = stride;
  p.scale = c.attn_scale;
  p.softcap = c.attn_softcap;
  p.window = window;
  return p;
}

}  // namespace

Status CudaModel::Impl::ensure_tokens(const ModelConfig& c, int T) {
  if (T <= cap_tokens) return Status::ok();
  graphs.clear();  // they point into the buffers about to be replaced
  const int cap = std::max(T, std::max(64, cap_tokens * 2));
  Stream& s = *stream;
  const size_t h = c.hidden_size, qd = c.q_dim(), kvd = c.kv_dim(), f = c.intermediate_size;
  NB_ASSIGN_OR_RETURN(x, DeviceBuffer<uint16_t>::create(s, cap * h));
  NB_ASSIGN_OR_RETURN(y, DeviceBuffer<uint16_t>::create(s, cap * h));
  NB_ASSIGN_OR_RETURN(hn, DeviceBuffer<uint16_t>::create(s, cap * h));
  NB_ASSIGN_OR_RETURN(sel, DeviceBuffer<uint16_t>::create(s, cap * h));
  NB_ASSIGN_OR_RETURN(qkv, DeviceBuffer<uint16_t>::create(s, cap * (qd + 2 * kvd)));
  NB_ASSIGN_OR_RETURN(q, DeviceBuffer<uint16_t>::create(s, cap * qd));
  NB_ASSIGN_OR_RETURN(attn, DeviceBuffer<uint16_t>::create(s, cap * qd));
  NB_ASSIGN_OR_RETURN(gate_up, DeviceBuffer<uint16_t>::create(s, cap * 2 * f));
  NB_ASSIGN_OR_RETURN(act, DeviceBuffer<uint16_t>::create(s, cap * f));
  size_t scratch = 0;
  for (const GpuLayer& g : layers)
    for (const GpuLinear* lin : {&g.qkv, &g.o, &g.gate_up, &g.down}) scratch = std::max(scratch, lin->scratch_elems(cap));
  if (scratch > w4_scratch.size()) {
    NB_ASSIGN_OR_RETURN(w4_scratch, DeviceBuffer<uint16_t>::create(s, scratch));
  }
  cap_tokens = cap;
  return Status::ok();
}

Status CudaModel::Impl::ensure_rows(const ModelConfig& c, int R) {
  if (R <= cap_rows) return Status::ok();
  quiesce();  // the pinned buffers below may move
  graphs.clear();
  const int cap = std::max(R, std::max(16, cap_rows * 2));
  NB_ASSIGN_OR_RETURN(logits, DeviceBuffer<float>::create(*stream, static_cast<size_t>(cap) * c.vocab_size));
  NB_ASSIGN_OR_RETURN(next_dev, DeviceBuffer<int32_t>::create(*stream, cap));
  // The last submitted step's picks move along: the next step's prev_pick names them.
  NB_ASSIGN_OR_RETURN(auto chain, DeviceBuffer<int32_t>::create(*stream, cap));
  if (cap_rows > 0)
    NB_TRY(cuda_status(cudaMemcpyAsync(chain.get(), chain_dev.get(), cap_rows * sizeof(int32_t),
                                       cudaMemcpyDeviceToDevice, stream->get()), "picks copy"));
  chain_dev = std::move(chain);
  NB_TRY(out_host.reserve(static_cast<size_t>(cap) * c.vocab_size * sizeof(float)));
  for (auto& p : picks_host) NB_TRY(p.reserve(static_cast<size_t>(cap) * sizeof(int32_t)));
  cap_rows = cap;
  return Status::ok();
}

void CudaModel::Impl::quiesce() {
  bool failed = false;
  for (InFlight& f : in_flight) {
    if (f.ready) {
      failed = failed || !f.ready->is_ok();
      continue;
    }
    if (failed) {  // built on a failed step's picks
      f.ready.emplace(Status::internal("the step submitted before this one failed"));
      continue;
    }
    finish(f);
    failed = !f.ready->is_ok();
  }
}

void CudaModel::Impl::finish(InFlight& f) {
  Status st = Status::ok();
  if (const cudaError_t e = step_done[f.half].wait(); e != cudaSuccess)
    st = Status::internal("CUDA step failed: {}", cudaGetErrorString(e));
  if (st = stream->settle(std::move(st), "collect"); !st) {
    f.ready.emplace(std::move(st));
  } else {
    const auto* p = reinterpret_cast<const int32_t*>(picks_host[f.half].get());
    f.ready.emplace(std::vector<int32_t>(p, p + f.rows));
  }
}

Status CudaModel::run(const ForwardBatch& batch, KvCache& kv_base, Pick pick, std::span<const SampleRequest> sample,
                      bool chained) const {
  const ModelConfig& c = config_;
  Impl& st = *impl_;
  Stream& s = *st.stream;
  auto* kv = dynamic_cast<CudaKvCache*>(&kv_base);
  if (!kv) return Status::invalid("CudaModel::forward: the KV cache was not made by this GPU model");
  NB_TRY(kv->take_error());
  const int T = batch.n_tokens(), S = static_cast<int>(batch.seqs.size());
  for (int t = 0; t < T; ++t)  // a chained step's prev_pick placeholders were checked by submit()
    if ((batch.tokens[t] < 0 && !chained) || batch.tokens[t] >= c.vocab_size)
      return Status::invalid("token id {} at batch index {} is outside the vocabulary [0, {})", batch.tokens[t], t,
                             c.vocab_size);

  // Host side: the rows whose logits are wanted, each token's sequence, the block tables.
  std::vector<int32_t> rows, token_seq(T);
  int max_blocks = 1, max_q = 0;
  bool decode_only = true;
  for (int i = 0; i < S; ++i) {
    const BatchSeq& sq = batch.seqs[i];
    const int need = batch.positions[sq.q_begin + sq.n_tokens - 1] + 1;
    if (static_cast<int>(sq.table->blocks.size()) * kv->block_size() < need)
      return Status::internal("sequence at batch index {} has blocks for {} positions, needs {}", sq.q_begin,
                              sq.table->blocks.size() * kv->block_size(), need);
    for (int j = 0; j < sq.n_tokens; ++j) token_seq[sq.q_begin + j] = i;
    if (sq.all_logits)
      for (int j = 0; j < sq.n_tokens; ++j) rows.push_back(sq.q_begin + j);
    else
      rows.push_back(sq.q_begin + sq.n_tokens - 1);
    max_blocks = std::max(max_blocks, static_cast<int>(sq.table->blocks.size()));
    max_q = std::max(max_q, sq.n_tokens);
    decode_only = decode_only && sq.n_tokens == 1;
  }
  const int R = static_cast<int>(rows.size());
  bool rows_in_order = R == T;
  for (int r = 0; r < R && rows_in_order; ++r) rows_in_order = rows[r] == r;
  const bool sampling = pick == Pick::kSample;  // forward_sample checked sample.size() == R
  size_t n_hist = 0;
  for (const SampleRequest& q : sample) {
    if (ops::sampling_uses_draw(q.params) && !(q.u >= 0.0 && q.u < 1.0))
      return Status::invalid("forward_sample: the uniform draw must be in [0, 1), got {}", q.u);
    n_hist += ops::penalized_ids(q.params, q.history).size();
  }
  // A power-of-two stride so that a growing context reuses the same decode graph for long.
  const int stride = static_cast<int>(std::bit_ceil(static_cast<unsigned>(std::max(max_blocks, 8))));
  NB_TRY(st.ensure_tokens(c, T));
  NB_TRY(st.ensure_rows(c, R));

  const MetaLayout ml(T, R, S, stride, sampling ? R : 0, sampling ? n_hist : 0);
  if (ml.total * 4 > st.meta.size()) {
    st.quiesce();  // a submitted step's copy may still read the staging about to move
    st.graphs.clear();
    NB_ASSIGN_OR_RETURN(st.meta, DeviceBuffer<uint8_t>::create(s, std::max<size_t>(ml.total * 4 * 2, 1 << 16)));
    for (auto& m : st.meta_host) NB_TRY(m.reserve(st.meta.size()));
  }
  st.meta_turn ^= 1;
  int32_t* h = reinterpret_cast<int32_t*>(st.meta_host[st.meta_turn].get());
  std::memcpy(h + ml.tokens, batch.tokens.data(), T * 4);
  std::memcpy(h + ml.positions, batch.positions.data(), T * 4);
  std::memcpy(h + ml.slots, batch.slots.data(), T * 4);
  std::memcpy(h + ml.token_seq, token_seq.data(), T * 4);
  std::memcpy(h + ml.rows, rows.data(), R * 4);
  std::fill(h + ml.tables, h + ml.tables + static_cast<size_t>(S) * stride, 0);
  auto* seqs = reinterpret_cast<PrefillSeq*>(h + ml.seqs);
  for (int i = 0; i < S; ++i) {
    const BatchSeq& sq = batch.seqs[i];
    std::copy(sq.table->blocks.begin(), sq.table->blocks.end(), h + ml.tables + static_cast<size_t>(i) * stride);
    seqs[i] = PrefillSeq{sq.q_begin, sq.n_tokens, i};
  }
  if (sampling) {
    auto* params = reinterpret_cast<SampleRowParams*>(h + ml.params);
    auto* uniforms = reinterpret_cast<double*>(h + ml.uniforms);
    int32_t* offsets = h + ml.hist_offsets;
    int32_t at = 0;
    for (int r = 0; r < R; ++r) {
      const SamplingParams& p = sample[r].params;
      params[r] = SampleRowParams{p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty, p.repeat_last_n};
      uniforms[r] = sample[r].u;
      const auto ids = ops::penalized_ids(sample[r].params, sample[r].history);
      offsets[r] = at;
      std::copy(ids.begin(), ids.end(), h + ml.history + at);
      at += static_cast<int32_t>(ids.size());
    }
    offsets[R] = at;
  }
  int32_t* d = reinterpret_cast<int32_t*>(st.meta.get());
  NB_TRY(cuda_status(cudaMemcpyAsync(d, h, ml.total * 4, cudaMemcpyHostToDevice, s.get()), "metadata copy"));

  const int hd = c.hidden_size;
  int32_t* picks = chained ? st.chain_dev.get() : st.next_dev.get();
  // Every kernel of the step; eager or under capture.
  auto enqueue = [&]() -> Status {
    // A chained step's prev_pick placeholders, in its token ids and penalty histories, become
    // the previous step's picks (still in chain_dev) before anything reads them.
    PickLinks links;
    if (chained) {
      links.picks = st.chain_dev.get();
      if (sampling) {
        links.hist = d + ml.history;
        links.n_hist = d + ml.hist_offsets + R;
      }
    }
    NB_TRY(embedding(st.embed.get(), c.vocab_size, hd, d + ml.tokens, T, c.embed_scale, st.x.get(), s, links));
    for (int l = 0; l < c.n_layers; ++l) {
      const GpuLayer& L = st.layers[l];
      if (l == 0)
        NB_TRY(rmsnorm(st.x.get(), nullptr, nullptr, L.attn_norm.get(), T, hd, c.norm_eps, c.norm_adds_one, st.hn.get(), s));
      else
        NB_TRY(rmsnorm(st.y.get(), st.x.get(), st.x.get(), L.attn_norm.get(), T, hd, c.norm_eps, c.norm_adds_one, st.hn.get(), s));
      NB_TRY(L.qkv.apply(st.hn.get(), T, st.qkv.get(), st.w4_scratch.get(), *st.blas, s));
      QkvPostParams qp;
      qp.n_heads = c.n_heads;
      qp.n_kv_heads = c.n_kv_heads;
      qp.head_dim = c.head_dim;
      qp.bias = L.qkv_bias.size() ? L.qkv_bias.get() : nullptr;
      qp.q_norm = c.qk_norm ? L.q_norm.get() : nullptr;
      qp.k_norm = c.qk_norm ? L.k_norm.get() : nullptr;
      qp.eps = c.norm_eps;
      qp.norm_adds_one = c.norm_adds_one;
      qp.inv_freq = L.inv_freq.get();
      NB_TRY(qkv_post(st.qkv.get(), T, d + ml.positions, d + ml.slots, qp, st.q.get(), kv->k(l), kv->v(l), s));
      const int window = c.layers[l].sliding ? c.sliding_window : 0;
      if (decode_only) {
        auto p = attn_params<DecodeAttnParams>(c, kv->block_size(), stride, window);
        p.cache = CacheType::kBF16;
        NB_TRY(paged_decode_attention(st.q.get(), d + ml.positions, d + ml.token_seq, d + ml.tables, kv->k(l), kv->v(l), T, p, st.attn.get(), s));
      } else {
        const auto p = attn_params<PrefillAttnParams>(c, kv->block_size(), stride, window);
        NB_TRY(paged_prefill_attention(st.q.get(), d + ml.positions, reinterpret_cast<const PrefillSeq*>(d + ml.seqs), S, max_q,
                                       d + ml.tables, kv->k(l), kv->v(l), p, st.attn.get(), s));
      }
      NB_TRY(L.o.apply(st.attn.get(), T, st.y.get(), st.w4_scratch.get(), *st.blas, s));
      if (c.sandwich_norms)
        NB_TRY(rmsnorm(st.y.get(), nullptr, nullptr, L.post_attn_norm.get(), T, hd, c.norm_eps, c.norm_adds_one, st.y.get(), s));
      NB_TRY(rmsnorm(st.y.get(), st.x.get(), st.x.get(), L.ffn_norm.get(), T, hd, c.norm_eps, c.norm_adds_one, st.hn.get(), s));
      NB_TRY(L.gate_up.apply_glu(st.hn.get(), T, c.activation == Activation::kGeluTanh, st.gate_up.get(), st.act.get(),
                                 st.w4_scratch.get(), *st.blas, s));
      NB_TRY(L.down.apply(st.act.get(), T, st.y.get(), st.w4_scratch.get(), *st.blas, s));
      if (c.sandwich_norms)
        NB_TRY(rmsnorm(st.y.get(), nullptr, nullptr, L.post_ffn_norm.get(), T, hd, c.norm_eps, c.norm_adds_one, st.y.get(), s));
    }
    // Final norm of the residual stream, then only the wanted rows through the LM head.
    NB_TRY(rmsnorm(st.y.get(), st.x.get(), st.x.get(), st.final_norm.get(), T, hd, c.norm_eps, c.norm_adds_one, st.hn.get(), s));
    // Every token's row, in order (a decode step): the LM head reads the norm's output as it is.
    const uint16_t* head_in = st.hn.get();
    if (!rows_in_order) {
      NB_TRY(gather_rows(st.hn.get(), d + ml.rows, R, hd, st.sel.get(), s));
      head_in = st.sel.get();
    }
    NB_TRY(st.blas->gemm(head_in, R, st.lm_head, c.vocab_size, hd, st.logits.get(), /*y_f32=*/true));
    if (c.final_softcap > 0) NB_TRY(softcap_f32(st.logits.get(), static_cast<int64_t>(R) * c.vocab_size, c.final_softcap, s));
    if (pick == Pick::kArgmax) NB_TRY(argmax_rows(st.logits.get(), R, c.vocab_size, picks, s));
    // Sampling is part of the step (and of its decode graph): its inputs are in the metadata
    // refreshed before each replay. The history pointer is passed even when empty, since a
    // graph keeps it for the later steps that have one.
    if (sampling)
      NB_TRY(sample_rows(st.logits.get(), R, c.vocab_size, reinterpret_cast<const SampleRowParams*>(d + ml.params),
                         d + ml.history, d + ml.hist_offsets, reinterpret_cast<const double*>(d + ml.uniforms),
                         picks, s));
    return Status::ok();
  };

  if (decode_only && st.options.graphs) {
    // A graph bakes in every pointer it was captured with: the cache's storage among them.
    auto& g = st.graphs[Impl::GraphKey{T * 6 + static_cast<int>(pick) * 2 + chained, stride, kv->k(0)}];
    if (!g || (g->exec && g->scratch_generation != s.scratch_generation()))
      g = std::make_unique<DecodeGraph>();  // new, or its scratch was reallocated since
    if (g->exec) {
      NB_TRY(cuda_status(cudaGraphLaunch(g->exec, s.get()), "decode graph launch"));
    } else if (g->seen++ == 0) {
      NB_TRY(enqueue());  // the first run sizes every scratch buffer; capture the next
    } else {
      NB_TRY(cuda_status(cudaStreamBeginCapture(s.get(), cudaStreamCaptureModeThreadLocal), "graph capture"));
      const Status captured = enqueue();
      cudaGraph_t graph = nullptr;
      const cudaError_t end = cudaStreamEndCapture(s.get(), &graph);
      if (!captured.is_ok()) {
        if (graph) cudaGraphDestroy(graph);
        return captured;
      }
      NB_TRY(cuda_status(end, "graph capture"));
      g->graph = graph;
      g->scratch_generation = s.scratch_generation();
      NB_TRY(cuda_status(cudaGraphInstantiate(&g->exec, graph, 0), "graph instantiate"));
      NB_TRY(cuda_status(cudaGraphLaunch(g->exec, s.get()), "decode graph launch"));
    }
  } else {
    NB_TRY(enqueue());
  }
  return Status::ok();
}

namespace {

// Brings `n` values of `src` (the logits or the token ids) back into `out` through the pinned
// buffer, waiting for the step to finish: the point where a fault inside any of its kernels
// shows. `out` is filled only when the whole step succeeded.
template <typename T>
Status copy_back(CudaModel::Impl& st, const T* src, size_t n, std::vector<T>& out) {
  NB_TRY(cuda_status(cudaMemcpyAsync(st.out_host.get(), src, n * sizeof(T), cudaMemcpyDeviceToHost, st.stream->get()),
                     "copy to the host"));
  NB_TRY(st.stream->sync().with_context("the copy back: "));
  out.resize(n);
  std::memcpy(out.data(), st.out_host.get(), n * sizeof(T));
  return Status::ok();
}

}  // namespace

// Each entry point: a lost context answers at once, before anything is enqueued or copied; a
// failure is classified by Stream::settle (sticky: the model is lost for good; otherwise only
// this call failed and the next one starts clean).
template <typename T>
Status CudaModel::run_and_copy(const char* call, const ForwardBatch& batch, KvCache& kv, Pick pick,
                               std::span<const SampleRequest> sample, std::vector<T>& out) const {
  out.clear();
  Stream& s = *impl_->stream;
  NB_TRY(s.lost());
  if (batch.n_tokens() == 0) return Status::ok();
  impl_->quiesce();  // submitted steps still running: their staging halves are not free
  Status st = run(batch, kv, pick, sample);
  if (st) {
    const size_t rows = static_cast<size_t>(batch.n_logit_rows());
    if constexpr (std::is_same_v<T, float>)
      st = copy_back(*impl_, impl_->logits.get(), rows * config_.vocab_size, out);
    else
      st = copy_back(*impl_, impl_->next_dev.get(), rows, out);
  }
  return s.settle(std::move(st), call);
}

Status CudaModel::forward(const ForwardBatch& batch, KvCache& kv, std::vector<float>& logits) const {
  return run_and_copy("forward", batch, kv, Pick::kLogits, {}, logits);
}

Status CudaModel::forward_greedy(const ForwardBatch& batch, KvCache& kv, std::vector<int32_t>& next) const {
  return run_and_copy("forward_greedy", batch, kv, Pick::kArgmax, {}, next);
}

Status CudaModel::forward_sample(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows,
                                 std::vector<int32_t>& tokens) const {
  tokens.clear();
  NB_TRY(impl_->stream->lost());
  if (static_cast<int>(rows.size()) != batch.n_logit_rows())
    return Status::invalid("forward_sample: {} sampling rows for {} logits rows", rows.size(), batch.n_logit_rows());
  return all_plain_greedy(rows) ? run_and_copy("forward_sample", batch, kv, Pick::kArgmax, {}, tokens)
                : run_and_copy("forward_sample", batch, kv, Pick::kSample, rows, tokens);
}

Status CudaModel::submit(const ForwardBatch& batch, KvCache& kv, std::span<const SampleRequest> rows) const {
  Impl& st = *impl_;
  Stream& s = *st.stream;
  NB_TRY(s.lost());
  if (static_cast<int>(st.in_flight.size()) >= kMaxInFlight)
    return Status::invalid("submit: {} steps are in flight already; collect one first", st.in_flight.size());
  const int prev_rows = st.chain_rows;
  st.chain_rows = -1;
  NB_TRY(check_submit(batch, rows, prev_rows));
  Status r = run(batch, kv, all_plain_greedy(rows) ? Pick::kArgmax : Pick::kSample, rows, /*chained=*/true);
  // The picks come back into the pinned half of this step's metadata turn, behind its event.
  const int half = st.meta_turn, R = static_cast<int>(rows.size());
  if (r)
    r = cuda_status(cudaMemcpyAsync(st.picks_host[half].get(), st.chain_dev.get(), R * sizeof(int32_t),
                                    cudaMemcpyDeviceToHost, s.get()),
                    "copy to the host");
  if (r) r = st.step_done[half].record(s.get());
  NB_TRY(s.settle(std::move(r), "submit"));
  st.in_flight.push_back(Impl::InFlight{half, R, std::nullopt});
  st.chain_rows = R;
  return Status::ok();
}

Status CudaModel::collect(std::vector<int32_t>& tokens) const {
  tokens.clear();
  Impl& st = *impl_;
  if (st.in_flight.empty()) return Status::invalid("collect: no step is in flight");
  // Only this step is waited for: the one after it keeps running.
  if (!st.in_flight.front().ready) st.finish(st.in_flight.front());
  Result<std::vector<int32_t>> done = std::move(*st.in_flight.front().ready);
  st.in_flight.pop_front();
  if (!done) {
    // The steps after it were built on its picks: dropped (settle waited for them).
    st.in_flight.clear();
    st.chain_rows = -1;
    return done.status();
  }
  tokens = std::move(*done);
  return Status::ok();
}

int CudaModel::in_flight() const { return static_cast<int>(impl_->in_flight.size()); }

const Status& CudaModel::lost() const { return impl_->stream->lost(); }

}  // namespace nibble::cuda
