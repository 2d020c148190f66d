// Progress lines of the local commands (`dp-agent convert`, `dp-agent
// verify`), which on a real DP run for hours before their summary. On a
// terminal the line is redrawn in place twice a second; otherwise (logs,
// `--progress always` into a file) it is a plain line every ten seconds and
// one at the end.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "agent/contentlib/content_library.h"
#include "agent/importer/importer.h"

namespace dpr::importer {

// When and how to draw; what the line says is left to a subclass.
class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;
  using Write = std::function<void(const std::string&)>;

  // `now` is for tests.
  ProgressLine(Write write, bool terminal, std::function<Clock::time_point()> now = Clock::now);
  virtual ~ProgressLine() = default;

  // A line of its own (a failure, a kept folder): on a terminal it first
  // clears the progress line, which the next update draws again.
  void Print(const std::string& line);
  // The work is over: a terminal's line is cleared (the summary follows),
  // a plain output gets a last line.
  void Finish();

  // What the line says now, without terminal control characters.
  virtual std::string Text() const = 0;

 protected:
  // Draws the line if it is due.
  void Tick();
  double Seconds() const;

 private:
  void Draw();

  Write write_;
  bool terminal_;
  std::function<Clock::time_point()> now_;
  Clock::time_point start_, last_draw_;
  bool drawn_ = false;  // a terminal line is on screen
};

// dp-agent convert: packages committed, bytes read, rate.
class ImportProgressLine : public ProgressLine {
 public:
  // `packages_total`: the packages the run was given.
  ImportProgressLine(Write write, bool terminal, size_t packages_total,
                     std::function<Clock::time_point()> now = Clock::now)
      : ProgressLine(std::move(write), terminal, std::move(now)), packages_total_(packages_total) {}

  // Takes an event (one at a time, as the importer gives them).
  void OnEvent(const ImportEvent& e);
  std::string Text() const override;

 private:
  size_t packages_total_;
  size_t done_ = 0, failed_ = 0;
  uint64_t finished_bytes_ = 0;                // read by packages no longer in flight
  std::map<std::string, uint64_t> in_flight_;  // content ID -> bytes read so far
};

// dp-agent verify: contents read, objects checked, bytes re-hashed.
class VerifyProgressLine : public ProgressLine {
 public:
  using ProgressLine::ProgressLine;

  void OnProgress(const contentlib::VerifyProgress& p);
  std::string Text() const override;

 private:
  contentlib::VerifyProgress last_{};
};

}  // namespace dpr::importer
