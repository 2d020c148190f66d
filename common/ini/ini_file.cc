#include "common/ini/ini_file.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "fmt/format.h"

namespace dpr {
namespace {

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_tolower(static_cast<unsigned char>(a[i])) !=
        absl::ascii_tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

absl::Status CheckText(std::string_view what, std::string_view text) {
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return absl::InvalidArgumentError(
          fmt::format("ini {} '{}' contains a line break or NUL", what,
                      absl::CEscape(absl::string_view(text.data(), text.size()))));
    }
  }
  if (Trim(text) != text) {
    return absl::InvalidArgumentError(
        fmt::format("ini {} '{}' has leading or trailing blanks", what, text));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<IniFile> IniFile::Parse(std::string_view text, std::string_view name_for_errors) {
  IniFile ini;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  Section* current = nullptr;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto error = [&](std::string_view why) {
      return absl::InvalidArgumentError(fmt::format("{}:{}: {}", name_for_errors, line_no, why));
    };
    if (line.find('\0') != std::string_view::npos) return error("NUL byte in line");
    line = Trim(line);
    if (line.empty() || line[0] == ';' || line[0] == '#') continue;
    if (line[0] == '[') {
      if (line.back() != ']' || line.size() < 3) {
        return error(fmt::format("malformed section header '{}'", line));
      }
      const std::string_view name = Trim(line.substr(1, line.size() - 2));
      // "[   ]" would be a section Serialize() writes as "[]", which no
      // parser reads back (found by ini_fuzz).
      if (name.empty()) return error("empty section name");
      current = &ini.AddSection(name);
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return error(fmt::format("expected '[section]' or 'key=value', got '{}'", line));
    }
    std::string_view key = Trim(line.substr(0, eq));
    if (key.empty()) return error("empty key");
    if (current == nullptr) return error(fmt::format("key '{}' before any section", key));
    current->entries.push_back({std::string(key), std::string(Trim(line.substr(eq + 1)))});
  }
  return ini;
}

std::string IniFile::Serialize() const {
  std::string out;
  for (const Section& s : sections_) {
    absl::StrAppend(&out, "[", s.name, "]\r\n");
    for (const Entry& e : s.entries) absl::StrAppend(&out, e.key, "=", e.value, "\r\n");
  }
  return out;
}

const IniFile::Section* IniFile::FindSection(std::string_view name) const {
  for (const Section& s : sections_) {
    if (EqualsIgnoreCase(s.name, name)) return &s;
  }
  return nullptr;
}

IniFile::Section* IniFile::FindSectionMutable(std::string_view name) {
  return const_cast<Section*>(static_cast<const IniFile*>(this)->FindSection(name));
}

std::optional<std::string> IniFile::Get(std::string_view section, std::string_view key) const {
  const Section* s = FindSection(section);
  if (s == nullptr) return std::nullopt;
  for (const Entry& e : s->entries) {
    if (EqualsIgnoreCase(e.key, key)) return e.value;
  }
  return std::nullopt;
}

IniFile::Section& IniFile::AddSection(std::string_view name) {
  if (Section* s = FindSectionMutable(name)) return *s;
  sections_.push_back({std::string(name), {}});
  return sections_.back();
}

absl::Status IniFile::Set(std::string_view section, std::string_view key, std::string_view value) {
  if (auto st = CheckText("section", section); !st.ok()) return st;
  if (auto st = CheckText("key", key); !st.ok()) return st;
  if (auto st = CheckText("value", value); !st.ok()) return st;
  if (section.empty() || section.find(']') != std::string_view::npos) {
    return absl::InvalidArgumentError(fmt::format("ini section name '{}' is not valid", section));
  }
  if (key.empty() || key.find('=') != std::string_view::npos || key[0] == '[' || key[0] == ';' ||
      key[0] == '#') {
    return absl::InvalidArgumentError(fmt::format("ini key '{}' is not valid", key));
  }
  Section& s = AddSection(section);
  for (Entry& e : s.entries) {
    if (EqualsIgnoreCase(e.key, key)) {
      e.value = std::string(value);
      return absl::OkStatus();
    }
  }
  s.entries.push_back({std::string(key), std::string(value)});
  return absl::OkStatus();
}

bool IniFile::Remove(std::string_view section, std::string_view key) {
  Section* s = FindSectionMutable(section);
  if (s == nullptr) return false;
  size_t before = s->entries.size();
  std::erase_if(s->entries, [&](const Entry& e) { return EqualsIgnoreCase(e.key, key); });
  return s->entries.size() != before;
}

}  // namespace dpr
