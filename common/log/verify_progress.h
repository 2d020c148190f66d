// How far a library verification has got, and its words: the same line for
// `dp-agent verify` on the DP and `dpctl dp verify` through the controller.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace dpr {

// A verify with a repair runs in three phases: the check, the search of the
// legacy folders for copies of the damaged objects, and the check again.
enum class VerifyPhase { kCheck, kRepair, kRecheck };

struct VerifyProgress {
  VerifyPhase phase = VerifyPhase::kCheck;
  uint64_t contents_done = 0, contents_total = 0;
  uint64_t objects_done = 0, objects_expected = 0;  // expected: those DataLib names
  uint64_t bytes_hashed = 0, bytes_expected = 0;
  // kRepair: objects put back of those damaged, and the legacy files looked
  // at (listed) and hashed (only those of a damaged object's size).
  uint64_t objects_repaired = 0, objects_damaged = 0;
  uint64_t legacy_files_seen = 0, legacy_files_hashed = 0, legacy_bytes_hashed = 0;
};

// "verified 468/468 contents, 6144/13535 objects, re-hashed 864.6/1519.9
// MiB (210.3 MiB/s), 4 s": objects and bytes only once there are some.
// kRepair: "repairing: 1/3 objects put back; looked at 12034 legacy files,
// hashed 14 (35.2 MiB), 7 s". kRecheck: "checking again: verified ...".
std::string VerifyProgressText(const VerifyProgress& p, double seconds);

// `fn` given each progress marked as `phase` (none if `fn` is empty): the
// check, which knows no phase, run before a repair or after it.
std::function<void(const VerifyProgress&)> InPhase(
    VerifyPhase phase, const std::function<void(const VerifyProgress&)>& fn);

}  // namespace dpr
