// libFuzzer target: the inventory document parser. It must never crash;
// what it accepts satisfies the invariants the site database relies on.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "common/nal/nal_path.h"
#include "controller/inventory/inventory_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto inv = dpr::controller::ParseInventory(text, "fuzz.json");
  if (!inv.ok()) return 0;
  std::set<std::string> packages;
  for (const auto& p : inv->packages) {
    if (!dpr::controller::IsValidPackageId(p.id)) std::abort();
    packages.insert(p.id);
  }
  for (const auto& dp : inv->distribution_points) {
    if (dp.dpid <= 0 || !dpr::IsValidSiteCode(dp.site)) std::abort();
    for (const auto& p : dp.packages) {
      if (!packages.count(p.package_id)) std::abort();
      // Below the share root: no empty, "." or ".." part, nothing absolute.
      size_t start = 0;
      for (;;) {
        const size_t end = p.location.find('\\', start);
        const std::string part = p.location.substr(start, end - start);
        if (part.empty() || part == "." || part == ".." || part.find(':') != std::string::npos) {
          std::abort();
        }
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
  }
  return 0;
}
