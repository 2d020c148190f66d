#include "common/nal/nal_path.h"

#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace dpr {
namespace {

constexpr std::string_view kDisplayOpen = "[\"Display=";
constexpr std::string_view kClose = "\"]";
constexpr std::string_view kSiteOpen = "[\"SMS_SITE=";

absl::Status Bad(std::string_view text, size_t pos, std::string_view why) {
  return absl::InvalidArgumentError(
      fmt::format("malformed NAL path '{}' at offset {}: {}", text, pos, why));
}

bool IsServerChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

}  // namespace

bool IsValidSiteCode(std::string_view code) {
  if (code.size() != 3) return false;
  for (char c : code) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool SameServer(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (absl::ascii_toupper(static_cast<unsigned char>(a[i])) !=
        absl::ascii_toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<NalPath> ParseNalPath(std::string_view text) {
  NalPath nal;
  size_t pos = 0;
  if (text.substr(0, kDisplayOpen.size()) == kDisplayOpen) {
    pos = kDisplayOpen.size();
    size_t end = text.find(kClose, pos);
    if (end == std::string_view::npos)
      return Bad(text, pos, "Display= value is not closed by '\"]'");
    nal.display = std::string(text.substr(pos, end - pos));
    pos = end + kClose.size();
  }
  size_t colon = text.find(':', pos);
  if (colon == std::string_view::npos || colon == pos)
    return Bad(text, pos, "no protocol before ':'");
  nal.protocol = std::string(text.substr(pos, colon - pos));
  for (char c : nal.protocol) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      return Bad(text, pos, "protocol must be letters and digits");
    }
  }
  pos = colon + 1;
  if (text.substr(pos, kSiteOpen.size()) != kSiteOpen)
    return Bad(text, pos, "expected [\"SMS_SITE=");
  pos += kSiteOpen.size();
  size_t end = text.find(kClose, pos);
  if (end == std::string_view::npos)
    return Bad(text, pos, "SMS_SITE= value is not closed by '\"]'");
  nal.site_code = std::string(text.substr(pos, end - pos));
  if (!IsValidSiteCode(nal.site_code)) {
    return Bad(text, pos,
               fmt::format("site code '{}' is not three letters or digits", nal.site_code));
  }
  pos = end + kClose.size();
  if (text.substr(pos, 2) != "\\\\")
    return Bad(text, pos, "expected '\\\\' before the server name");
  pos += 2;
  size_t server_end = text.find('\\', pos);
  if (server_end == std::string_view::npos) {
    return Bad(text, pos, "server name must end with '\\'");
  }
  if (server_end == pos) return Bad(text, pos, "empty server name");
  nal.server = std::string(text.substr(pos, server_end - pos));
  for (char c : nal.server) {
    if (!IsServerChar(c))
      return Bad(text, pos, fmt::format("bad character in server name '{}'", nal.server));
  }
  pos = server_end + 1;
  std::string_view rest = text.substr(pos);
  if (!rest.empty()) {
    if (rest.back() != '\\') return Bad(text, text.size(), "share path must end with '\\'");
    size_t seg_start = 0;
    for (size_t i = 0; i < rest.size(); ++i) {
      char c = rest[i];
      if (c == '"' || c == '\0' || c == '/' || c == ':') {
        return Bad(text, pos + i, "bad character in share path");
      }
      if (c == '\\') {
        std::string_view seg = rest.substr(seg_start, i - seg_start);
        if (seg.empty() || seg == "." || seg == "..") {
          return Bad(text, pos + seg_start, "empty, '.' or '..' share path segment");
        }
        seg_start = i + 1;
      }
    }
    nal.share = std::string(rest);
  }
  return nal;
}

std::string FormatNalPath(const NalPath& nal) {
  std::string out;
  if (!nal.display.empty()) out = fmt::format("[\"Display={}\"]", nal.display);
  fmt::format_to(std::back_inserter(out), "{}:[\"SMS_SITE={}\"]\\\\{}\\{}", nal.protocol,
                 nal.site_code, nal.server, nal.share);
  return out;
}

absl::StatusOr<std::vector<std::string>> SplitShareRelativePath(std::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("is empty");
  if (path.front() == '\\' || path.front() == '/' || (path.size() > 1 && path[1] == ':')) {
    return absl::InvalidArgumentError(
        "must be relative to the DP's share root (like SMSPKGD$\\S0700001)");
  }
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find_first_of("\\/", start);
    if (end == std::string_view::npos) end = path.size();
    std::string part(path.substr(start, end - start));
    if (part.empty() && end == path.size() && !parts.empty()) break;  // one trailing separator
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          fmt::format("has a '{}' part; give a plain folder path", part));
    }
    for (unsigned char c : part) {
      if (c < 0x20 || c == '"' || c == '*' || c == '?' || c == '<' || c == '>' || c == '|' ||
          c == ':') {
        return absl::InvalidArgumentError(
            fmt::format("has a character not allowed in a Windows folder name in '{}'", part));
      }
    }
    parts.push_back(std::move(part));
    start = end + 1;
  }
  return parts;
}

NalPath SiteSystemNal(std::string_view server, std::string_view site_code) {
  return NalPath{fmt::format("\\\\{}\\", server), "MSWNET", std::string(site_code),
                 std::string(server), ""};
}

NalPath ShareNal(std::string_view server, std::string_view site_code, std::string_view share) {
  std::string s(share);
  while (!s.empty() && s.front() == '\\') s.erase(0, 1);
  if (!s.empty() && s.back() != '\\') s.push_back('\\');
  return NalPath{"", "MSWNET", std::string(site_code), std::string(server), s};
}

}  // namespace dpr
