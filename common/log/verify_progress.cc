#include "common/log/verify_progress.h"

#include "fmt/format.h"

namespace dpr {

std::string VerifyProgressText(const VerifyProgress& p, double seconds) {
  auto mib = [](uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); };
  if (p.phase == VerifyPhase::kRepair) {
    return fmt::format(
        "repairing: {}/{} objects put back; looked at {} legacy files, hashed {} ({:.1f} MiB), "
        "{:.0f} s",
        p.objects_repaired, p.objects_damaged, p.legacy_files_seen, p.legacy_files_hashed,
        mib(p.legacy_bytes_hashed), seconds);
  }
  std::string text = fmt::format("{}verified {}/{} contents",
                                 p.phase == VerifyPhase::kRecheck ? "checking again: " : "",
                                 p.contents_done, p.contents_total);
  if (p.objects_done > 0) {
    // Objects the contents do not name are found only by listing FileLib,
    // so the total is what DataLib expects.
    text += fmt::format(", {}/{} objects", p.objects_done, p.objects_expected);
  }
  if (p.bytes_hashed > 0) {
    text +=
        fmt::format(", re-hashed {:.1f}/{:.1f} MiB", mib(p.bytes_hashed), mib(p.bytes_expected));
    if (seconds > 0) text += fmt::format(" ({:.1f} MiB/s)", mib(p.bytes_hashed) / seconds);
  }
  text += fmt::format(", {:.0f} s", seconds);
  return text;
}

std::function<void(const VerifyProgress&)> InPhase(
    VerifyPhase phase, const std::function<void(const VerifyProgress&)>& fn) {
  if (!fn) return {};
  return [phase, fn](const VerifyProgress& p) {
    VerifyProgress marked = p;
    marked.phase = phase;
    fn(marked);
  };
}

}  // namespace dpr
