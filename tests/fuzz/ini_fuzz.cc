// libFuzzer target: the INI reader (DataLib/FileLib/PkgLib files, the
// agent's assignment). Anything that parses must serialise and parse back
// to the same sections.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/ini/ini_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ini = dpr::IniFile::Parse(text, "fuzz.ini");
  if (!ini.ok()) return 0;
  auto again = dpr::IniFile::Parse(ini->Serialize(), "fuzz.ini");
  if (!again.ok() || again->Serialize() != ini->Serialize()) std::abort();
  return 0;
}
