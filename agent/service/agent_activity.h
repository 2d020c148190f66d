// What the agent has converted since it started and what it converts now,
// for systemd's STATUS= line and the metrics endpoint. Plain atomics, so
// the service needs no metrics library.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace dpr::agent {

struct AgentActivity {
  // Totals since start. A package an earlier run finished is not counted.
  std::atomic<uint64_t> conversions{0};  // ConvertContent requests that ran to the end
  std::atomic<uint64_t> packages_converted{0};
  std::atomic<uint64_t> packages_failed{0};
  std::atomic<uint64_t> bytes_converted{0};  // bytes of the packages converted
  std::atomic<uint64_t> bytes_stored{0};     // newly written into FileLib
  std::atomic<uint64_t> bytes_deduplicated{0};

  // The conversion running now (converting false: none).
  std::atomic<bool> converting{false};
  std::atomic<uint64_t> job_id{0};
  std::atomic<uint64_t> packages_total{0};
  std::atomic<uint64_t> packages_done{0};  // done, failed or found done earlier
  std::atomic<uint64_t> bytes_done{0};     // bytes of packages converted in it
  std::atomic<int64_t> started_ms{0};      // steady clock

  // Bytes per second of the conversion running now, or of the last one.
  double RateBytesPerSecond() const { return last_rate.load(); }
  void UpdateRate(int64_t now_ms) {
    const int64_t elapsed = now_ms - started_ms.load();
    if (elapsed > 0) last_rate = static_cast<double>(bytes_done.load()) * 1000.0 / elapsed;
  }
  static int64_t SteadyMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

 private:
  std::atomic<double> last_rate{0};
};

}  // namespace dpr::agent
