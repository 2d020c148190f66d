// How far a library verification has got, and its words: the same line for
// `dp-agent verify` on the DP and `dpctl dp verify` through the controller.
#pragma once

#include <cstdint>
#include <string>

namespace dpr {

struct VerifyProgress {
  uint64_t contents_done = 0, contents_total = 0;
  uint64_t objects_done = 0, objects_expected = 0;  // expected: those DataLib names
  uint64_t bytes_hashed = 0, bytes_expected = 0;
};

// "verified 468/468 contents, 6144/13535 objects, re-hashed 864.6/1519.9
// MiB (210.3 MiB/s), 4 s": objects and bytes only once there are some.
std::string VerifyProgressText(const VerifyProgress& p, double seconds);

}  // namespace dpr
