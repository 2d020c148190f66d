#include "agent/importer/progress_line.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "fmt/format.h"

namespace dpr::importer {
namespace {

// A terminal is redrawn often enough to look alive; a log gets a line only
// every so often, so a day-long run does not flood it.
constexpr auto kTerminalEvery = std::chrono::milliseconds(500);
constexpr auto kPlainEvery = std::chrono::seconds(10);

double Mib(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

}  // namespace

ProgressLine::ProgressLine(Write write, bool terminal, std::function<Clock::time_point()> now)
    : write_(std::move(write)),
      terminal_(terminal),
      now_(std::move(now)),
      start_(now_()),
      last_draw_(start_) {}

void ProgressLine::Tick() {
  const auto now = now_();
  if (now - last_draw_ >= (terminal_ ? kTerminalEvery : kPlainEvery)) {
    last_draw_ = now;
    Draw();
  }
}

double ProgressLine::Seconds() const {
  return std::chrono::duration<double>(now_() - start_).count();
}

void ProgressLine::Print(const std::string& line) {
  if (terminal_ && drawn_) write_("\r\x1b[K");
  drawn_ = false;
  write_(line + "\n");
}

void ProgressLine::Finish() {
  if (terminal_) {
    if (drawn_) write_("\r\x1b[K");
    drawn_ = false;
    return;
  }
  Draw();
}

void ProgressLine::Draw() {
  if (terminal_) {
    write_("\r" + Text() + "\x1b[K");
    drawn_ = true;
  } else {
    write_(Text() + "\n");
  }
}

void ImportProgressLine::OnEvent(const ImportEvent& e) {
  using K = ImportEvent::Kind;
  switch (e.kind) {
    case K::kPackageStarted:
    case K::kPackageProgress:
      in_flight_[e.content_id] = e.bytes_done;
      break;
    case K::kPackageDone:
    case K::kPackageFailed: {
      // A package committed by an earlier run was not read by this one.
      if (!e.already_done) finished_bytes_ += std::max(e.bytes_done, in_flight_[e.content_id]);
      in_flight_.erase(e.content_id);
      ++(e.kind == K::kPackageDone ? done_ : failed_);
      break;
    }
  }
  Tick();
}

std::string ImportProgressLine::Text() const {
  const uint64_t read = std::accumulate(in_flight_.begin(), in_flight_.end(), finished_bytes_,
                                        [](uint64_t sum, const auto& p) { return sum + p.second; });
  const double seconds = Seconds();
  std::string text = fmt::format("converted {}/{} packages", done_, packages_total_);
  if (failed_ > 0) text += fmt::format(", {} failed", failed_);
  text += fmt::format(", read {:.1f} MiB", Mib(read));
  if (seconds > 0) text += fmt::format(" ({:.1f} MiB/s)", Mib(read) / seconds);
  text += fmt::format(", {:.0f} s", seconds);
  return text;
}

void VerifyProgressLine::OnProgress(const contentlib::VerifyProgress& p) {
  last_ = p;
  Tick();
}

std::string VerifyProgressLine::Text() const { return VerifyProgressText(last_, Seconds()); }

}  // namespace dpr::importer
