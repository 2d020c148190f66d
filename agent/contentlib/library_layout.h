// Where things live in the content library. Every path below is relative to
// <content-root>/SCCMContentLib, the folder the library holds open:
//
//   SCCMContentLib/
//   ├── PkgLib/
//   │   └── ABC00001.INI              [Packages] ABC00001.1=   [Info] Version=1
//   ├── DataLib/
//   │   ├── ABC00001.1.INI            [Info] Hash=<content hash>
//   │   └── ABC00001.1/               the package's tree; each file replaced by
//   │       ├── setup.exe.INI         [File] Size= TimeModified= Attributes= Hash=
//   │       └── sub/data.cab.INI      (empty folders stay folders)
//   └── FileLib/
//       └── 1A2B/                     first 4 hex digits of the file hash
//           ├── 1A2B…(64 hex)         the bytes, stored once
//           └── 1A2B…(64 hex).INI     [File] Size=   [Users] ABC00001.1=
//
// Temp files and folders carry ".dprtmp." (kTempInfix) and are swept when
// the library is opened.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dpr::contentlib {

inline constexpr char kLibraryDir[] = "SCCMContentLib";
inline constexpr char kPkgLib[] = "PkgLib";
inline constexpr char kDataLib[] = "DataLib";
inline constexpr char kFileLib[] = "FileLib";

// "ABC00001": three letters or digits (the site code) and five hex digits,
// upper case as the product writes them.
bool IsValidPackageId(std::string_view id);

struct ContentId {
  std::string package_id;
  uint32_t version = 0;
  std::string ToString() const;  // "ABC00001.1"
  bool operator==(const ContentId&) const = default;
};

absl::StatusOr<ContentId> MakeContentId(std::string_view package_id, uint32_t version);
absl::StatusOr<ContentId> ParseContentId(std::string_view text);

std::string PkgLibIni(std::string_view package_id);    // PkgLib/ABC00001.INI
std::string DataLibIni(const ContentId& id);           // DataLib/ABC00001.1.INI
std::string DataLibDir(const ContentId& id);           // DataLib/ABC00001.1
std::string FileLibDir(std::string_view hash_hex);     // FileLib/1A2B
std::string FileLibObject(std::string_view hash_hex);  // FileLib/1A2B/<hash>
std::string FileLibIni(std::string_view hash_hex);     // FileLib/1A2B/<hash>.INI

// Windows FILETIME (100 ns ticks since 1601-01-01 UTC) from Unix time.
uint64_t UnixNanosToFiletime(int64_t unix_nanos);
// Win32 attributes of a legacy file: ARCHIVE (0x20), plus READONLY (0x01)
// when no write bit is set.
uint32_t Win32Attributes(uint32_t posix_mode);

}  // namespace dpr::contentlib
