// Checks a conversion before it starts: can the library link (same
// filesystem), how much free space the chosen mode needs, is the library's
// filesystem marked NO_SMS_ON_DRIVE.SMS, and is every package folder walkable.
//
// Space is computed from the trees, with duplicates found by hashing only
// files whose size another file shares (a file of unique size cannot be a
// duplicate). It assumes an empty library, so it never underestimates. It
// counts what the filesystem allocates: file sizes rounded up to its block,
// one block for each INI and folder the library will hold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/contentlib/file_system.h"
#include "agent/importer/importer.h"

namespace dpr::importer {

struct PreflightPackage {
  std::string package_id;
  bool found = false;
  uint64_t files = 0;
  uint64_t bytes = 0;
  absl::Status error;  // missing folder, refused entry
};

struct PreflightReport {
  bool ok = false;
  absl::Status refusal;                           // why the conversion would be refused
  bool same_filesystem = false;                   // every package on the library's filesystem
  ImportMode effective_mode = ImportMode::kAuto;  // what auto resolves to
  uint64_t files_total = 0;
  uint64_t bytes_total = 0;
  uint64_t bytes_unique = 0;
  uint64_t bytes_duplicate = 0;
  uint64_t bytes_needed = 0;  // free space the chosen mode needs
  uint64_t bytes_free = 0;
  uint64_t largest_package_bytes = 0;
  bool no_sms_on_drive = false;
  std::string no_sms_marker;  // where it was found
  std::vector<PreflightPackage> packages;
};

// `content_root` need not exist yet (its nearest existing parent is used).
absl::StatusOr<PreflightReport> Preflight(FileSystem* fs, const std::string& content_root,
                                          const std::vector<PackageSpec>& packages,
                                          ImportMode mode);

}  // namespace dpr::importer
