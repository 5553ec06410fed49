#include "core/progress.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace nibble {

bool ProgressBar::stderr_is_terminal() {
  static const bool tty = isatty(STDERR_FILENO) == 1 && std::getenv("NIBBLE_NO_PROGRESS") == nullptr;
  return tty;
}

ProgressBar::ProgressBar(std::string label, uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(stderr_is_terminal() && total > 0) {
  start_ = last_ = std::chrono::steady_clock::now();
  if (enabled_) draw(0);
}

void ProgressBar::update(uint64_t done) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < std::chrono::milliseconds(50)) return;
  last_ = now;
  draw(done);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  draw(total_);
  std::fputc('\n', stderr);
}

void ProgressBar::draw(uint64_t done) {
  constexpr int kWidth = 30;
  done = std::min(done, total_);
  const double frac = static_cast<double>(done) / static_cast<double>(total_);
  const int filled = static_cast<int>(frac * kWidth);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = 0;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // \r redraws in place; \x1b[K clears what a longer previous line left behind.
  std::fprintf(stderr, "\r%s [%s] %3d%% %.1fs\x1b[K", label_.c_str(), bar, static_cast<int>(frac * 100), secs);
  std::fflush(stderr);
}

void prefault_mapped(std::vector<std::pair<const void*, size_t>> ranges, const std::string& label, size_t min_bytes) {
  // Page-aligned, sorted, merged: each page is advised and touched once.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  std::vector<std::pair<uintptr_t, uintptr_t>> spans;  // [begin, end), page-aligned
  for (const auto& [p, n] : ranges) {
    if (p == nullptr || n == 0) continue;
    const auto b = reinterpret_cast<uintptr_t>(p);
    spans.emplace_back(b / page * page, (b + n + page - 1) / page * page);
  }
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<uintptr_t, uintptr_t>> merged;
  for (const auto& s : spans) {
    if (!merged.empty() && s.first <= merged.back().second) merged.back().second = std::max(merged.back().second, s.second);
    else merged.push_back(s);
  }
  uint64_t total = 0;
  for (const auto& [b, e] : merged) total += e - b;
  if (total < min_bytes) return;

  ProgressBar bar(label, total);
  constexpr uintptr_t kChunk = uintptr_t{64} << 20;
  uint64_t done = 0;
  volatile uint8_t sink = 0;
  for (const auto& [b, e] : merged) {
    for (uintptr_t c = b; c < e; c += kChunk) {
      const uintptr_t end = std::min(e, c + kChunk);
      // Advice only: a failure (e.g. an unusual mapping) costs speed, not correctness.
      (void)madvise(reinterpret_cast<void*>(c), end - c, MADV_WILLNEED);
      for (uintptr_t q = c; q < end; q += page) sink = sink + *reinterpret_cast<const volatile uint8_t*>(q);
      done += end - c;
      bar.update(done);
    }
  }
  bar.finish();
}

}  // namespace nibble
