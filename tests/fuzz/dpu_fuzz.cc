// libFuzzer target: the <DPID>.dpu name rules. A trigger always has a
// positive DPID that prints back to the digits of its name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "controller/distmgr/dpu_name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view name(reinterpret_cast<const char*>(data), size);
  auto what = dpr::distmgr::ClassifyDpuName(name);
  if (what.kind == dpr::distmgr::DpuNameKind::kTrigger) {
    if (what.dpid <= 0 || name.size() < 5) std::abort();
    const std::string head(name.substr(0, name.size() - 4));
    if (head.find_first_not_of("0123456789") != std::string::npos) std::abort();
    if (std::strtoll(head.c_str(), nullptr, 10) != what.dpid) std::abort();
  }
  return 0;
}
