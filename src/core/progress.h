// A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs, pipes and
// tests see nothing), and pre-faulting of memory-mapped weights with it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nibble {

class ProgressBar {
 public:
  // `total` units of work (bytes, tensors); `label` is printed before the bar.
  ProgressBar(std::string label, uint64_t total);
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `done` of `total` units finished; redraws at most ~20 times a second.
  void update(uint64_t done);
  // Draws 100% and ends the line (once; later calls do nothing).
  void finish();
  bool enabled() const { return enabled_; }

  // Whether bars are drawn at all: stderr is a TTY and NIBBLE_NO_PROGRESS is unset.
  static bool stderr_is_terminal();

 private:
  void draw(uint64_t done);
  std::string label_;
  uint64_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

// Asks the kernel to read these mapped ranges ahead (madvise(MADV_WILLNEED), in 64 MiB chunks)
// and touches one byte per page so that the first forward pass does not stall on page faults,
// with a progress bar labelled `label`. Does nothing when the ranges add up to less than
// `min_bytes`. Ranges may overlap or come in any order.
void prefault_mapped(std::vector<std::pair<const void*, size_t>> ranges, const std::string& label,
                     size_t min_bytes = size_t{64} << 20);

}  // namespace nibble
