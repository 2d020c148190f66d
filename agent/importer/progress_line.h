// The progress line of a local conversion (`dp-agent convert`), fed the
// importer's events. On a terminal it is one line redrawn in place twice a
// second; otherwise (logs, `--progress always` into a file) a plain line
// every ten seconds and one at the end. A conversion of a large DP runs for
// hours, and the summary comes only when it is over.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "agent/importer/importer.h"

namespace dpr::importer {

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;
  using Write = std::function<void(const std::string&)>;

  // `packages_total`: the packages the run was given. `now` is for tests.
  ProgressLine(Write write, bool terminal, size_t packages_total,
               std::function<Clock::time_point()> now = Clock::now);

  // Takes an event (one at a time, as the importer gives them); draws the
  // line when it is due.
  void OnEvent(const ImportEvent& e);
  // A line of its own (a failure, a kept folder): on a terminal it first
  // clears the progress line, which the next event draws again.
  void Print(const std::string& line);
  // The run is over: a terminal's line is cleared (the summary follows),
  // a plain output gets a last line.
  void Finish();

  // What the line says now, without terminal control characters.
  std::string Text() const;

 private:
  void Draw();

  Write write_;
  bool terminal_;
  size_t packages_total_;
  std::function<Clock::time_point()> now_;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;  // a terminal line is on screen
  size_t done_ = 0, failed_ = 0;
  uint64_t finished_bytes_ = 0;                // read by packages no longer in flight
  std::map<std::string, uint64_t> in_flight_;  // content ID -> bytes read so far
};

}  // namespace dpr::importer
