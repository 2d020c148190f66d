// What the job runner has done since the controller started, for the
// metrics endpoint: step durations and what conversions reported. Plain
// counters, so the runner needs no metrics library; the metrics module
// reads them at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace dpr::reassign {

class RunnerStats {
 public:
  static constexpr int kSteps = 9;
  struct StepTotals {
    uint64_t count = 0;
    double seconds = 0;
  };

  void StepDone(int step, double seconds) {
    if (step < 1 || step > kSteps) return;
    std::lock_guard<std::mutex> lock(mu_);
    ++steps_[step - 1].count;
    steps_[step - 1].seconds += seconds;
  }
  std::array<StepTotals, kSteps> Steps() const {
    std::lock_guard<std::mutex> lock(mu_);
    return steps_;
  }

  // From the agents' PackageDone / PackageFailed events. A package an
  // earlier run finished (already_done) is not counted again.
  std::atomic<uint64_t> packages_converted{0};
  std::atomic<uint64_t> packages_failed{0};
  std::atomic<uint64_t> bytes_converted{0};  // the packages' sizes
  std::atomic<uint64_t> bytes_stored{0};     // newly written into FileLib
  std::atomic<uint64_t> bytes_deduplicated{0};

 private:
  mutable std::mutex mu_;
  std::array<StepTotals, kSteps> steps_{};
};

}  // namespace dpr::reassign
