// Windows-style INI files as the content library uses them: "[Section]" and
// "key=value" lines, written with "\r\n" line ends and no BOM. Section and
// key lookups ignore ASCII case, as GetPrivateProfileString does; order of
// sections and keys is kept so a file round-trips unchanged.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dpr {

class IniFile {
 public:
  struct Entry {
    std::string key;
    std::string value;
  };
  struct Section {
    std::string name;
    std::vector<Entry> entries;
  };

  // Parses `text`; accepts "\n" or "\r\n" and skips a UTF-8 BOM, blank lines
  // and ';' or '#' comments. Any other line that is not a section header or
  // key=value is InvalidArgument naming "<name>:<line>". A repeated section
  // continues the first one.
  static absl::StatusOr<IniFile> Parse(std::string_view text, std::string_view name_for_errors);

  std::string Serialize() const;

  const std::vector<Section>& sections() const { return sections_; }
  const Section* FindSection(std::string_view name) const;
  // The first value of `key` in `section`, if present.
  std::optional<std::string> Get(std::string_view section, std::string_view key) const;

  // Adds the section if absent (at the end); returns it.
  Section& AddSection(std::string_view name);
  // Replaces the first `key` in `section` or appends it. InvalidArgument for
  // a key or value that could not be read back (line breaks, '=' in a key, a
  // key starting with '[' ';' or '#', surrounding blanks).
  absl::Status Set(std::string_view section, std::string_view key, std::string_view value);
  // Removes every `key` in `section`; returns whether one was there.
  bool Remove(std::string_view section, std::string_view key);

 private:
  Section* FindSectionMutable(std::string_view name);
  std::vector<Section> sections_;
};

}  // namespace dpr
