#include "controller/distmgr/dpu_name.h"

namespace dpr::distmgr {

DpuName ClassifyDpuName(std::string_view name) {
  constexpr std::string_view kExt = ".dpu";
  // Writers that build the file under another name and rename it in (as
  // dp-controller and careful scripts do) leave a partial file that never
  // ends in .dpu; those and dot files are not ours to touch.
  if (name.empty() || name.front() == '.') return {DpuNameKind::kIgnore, 0, ""};
  if (name.size() <= kExt.size() || name.substr(name.size() - kExt.size()) != kExt) {
    // Windows admins type 4.DPU as often as 4.dpu.
    if (name.size() > kExt.size()) {
      std::string_view ext = name.substr(name.size() - kExt.size());
      bool same = true;
      for (size_t i = 0; i < ext.size(); ++i) {
        char c = ext[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        same = same && c == kExt[i];
      }
      if (!same) return {DpuNameKind::kIgnore, 0, ""};
    } else {
      return {DpuNameKind::kIgnore, 0, ""};
    }
  }
  std::string_view digits = name.substr(0, name.size() - kExt.size());
  if (digits.empty()) return {DpuNameKind::kBad, 0, "no DP ID before .dpu"};
  if (digits.size() > 9) return {DpuNameKind::kBad, 0, "the DP ID is too long"};
  int64_t id = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return {DpuNameKind::kBad, 0, "the DP ID is not a number"};
    id = id * 10 + (c - '0');
  }
  if (id == 0) return {DpuNameKind::kBad, 0, "DP ID 0 does not exist"};
  return {DpuNameKind::kTrigger, id, ""};
}

}  // namespace dpr::distmgr
