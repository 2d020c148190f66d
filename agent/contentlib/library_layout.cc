#include "agent/contentlib/library_layout.h"

#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace dpr::contentlib {

bool IsValidPackageId(std::string_view id) {
  if (id.size() != 8) return false;
  for (size_t i = 0; i < 3; ++i) {
    char c = id[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  for (size_t i = 3; i < 8; ++i) {
    char c = id[i];
    if (!((c >= 'A' && c <= 'F') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

std::string ContentId::ToString() const { return fmt::format("{}.{}", package_id, version); }

absl::StatusOr<ContentId> MakeContentId(std::string_view package_id, uint32_t version) {
  if (!IsValidPackageId(package_id)) {
    return absl::InvalidArgumentError(fmt::format(
        "package ID '{}' is not a site code and five hex digits (like 'ABC00001')", package_id));
  }
  if (version == 0) {
    return absl::InvalidArgumentError(
        fmt::format("package '{}': source version must be 1 or more", package_id));
  }
  return ContentId{std::string(package_id), version};
}

absl::StatusOr<ContentId> ParseContentId(std::string_view text) {
  auto dot = text.find('.');
  if (dot == std::string_view::npos) {
    return absl::InvalidArgumentError(fmt::format("content ID '{}' has no '.<version>'", text));
  }
  std::string_view ver = text.substr(dot + 1);
  uint64_t v = 0;
  if (ver.empty() || ver.size() > 9) {
    return absl::InvalidArgumentError(fmt::format("content ID '{}' has a bad version", text));
  }
  for (char c : ver) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(fmt::format("content ID '{}' has a bad version", text));
    }
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return MakeContentId(text.substr(0, dot), static_cast<uint32_t>(v));
}

std::string PkgLibIni(std::string_view package_id) {
  return fmt::format("{}/{}.INI", kPkgLib, package_id);
}
std::string DataLibIni(const ContentId& id) {
  return fmt::format("{}/{}.INI", kDataLib, id.ToString());
}
std::string DataLibDir(const ContentId& id) {
  return fmt::format("{}/{}", kDataLib, id.ToString());
}
std::string FileLibDir(std::string_view hash_hex) {
  return fmt::format("{}/{}", kFileLib, hash_hex.substr(0, 4));
}
std::string FileLibObject(std::string_view hash_hex) {
  return fmt::format("{}/{}/{}", kFileLib, hash_hex.substr(0, 4), hash_hex);
}
std::string FileLibIni(std::string_view hash_hex) {
  return fmt::format("{}/{}/{}.INI", kFileLib, hash_hex.substr(0, 4), hash_hex);
}

uint64_t UnixNanosToFiletime(int64_t unix_nanos) {
  constexpr int64_t kEpochDiff = 116444736000000000LL;  // 1601→1970 in 100 ns ticks
  int64_t ticks = unix_nanos / 100 + kEpochDiff;
  return ticks < 0 ? 0 : static_cast<uint64_t>(ticks);
}

uint32_t Win32Attributes(uint32_t posix_mode) {
  uint32_t attrs = 0x20;
  if ((posix_mode & 0222) == 0) attrs |= 0x01;
  return attrs;
}

}  // namespace dpr::contentlib
