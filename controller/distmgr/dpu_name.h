// The `<DPID>.dpu` trigger file's name, as the seed describes it ("in my lab
// as my DP is ID 4, the file was: 4.dpu"). Pure, so it can be fuzzed.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace dpr::distmgr {

enum class DpuNameKind {
  kTrigger,  // "<DPID>.dpu": handle it
  kIgnore,   // not ours or not finished: a temp file, a dot file, another extension
  kBad,      // ends in .dpu but is not a DPID: set aside
};

struct DpuName {
  DpuNameKind kind = DpuNameKind::kIgnore;
  int64_t dpid = 0;
  std::string_view reason;  // for kBad
};

DpuName ClassifyDpuName(std::string_view name);

}  // namespace dpr::distmgr
