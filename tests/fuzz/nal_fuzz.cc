// libFuzzer target: NAL path parsing. A parsed path must format back to a
// string that parses to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/nal/nal_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto nal = dpr::ParseNalPath(text);
  if (!nal.ok()) return 0;
  auto again = dpr::ParseNalPath(dpr::FormatNalPath(*nal));
  if (!again.ok() || !(*again == *nal)) std::abort();
  return 0;
}
