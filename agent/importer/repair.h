// Repairs damaged or missing FileLib objects from legacy copies of their
// bytes (RELIABILITY row 9: "re-import from the legacy copy where one
// exists"), e.g. a kept package share or a package not yet converted.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/contentlib/content_library.h"

namespace dpr::importer {

struct RepairReport {
  uint64_t damaged = 0;                 // objects verify found damaged or missing
  uint64_t files_hashed = 0;            // legacy files read to look for copies
  std::vector<std::string> repaired;    // object hashes, replaced from...
  std::vector<std::string> sources;     // ...these legacy files (same order)
  std::vector<std::string> unrepaired;  // no legacy copy has their bytes
};

// The objects `problems` (from ContentLibrary::Verify) name as damaged
// (hash or size mismatch) or missing.
std::vector<Sha256Digest> DamagedObjects(const std::vector<contentlib::VerifyProblem>& problems);

// Looks below `legacy_root` (regular files only, symlinks not followed) for
// files whose bytes hash to a damaged object and puts each such copy in
// place with ContentLibrary::ReplaceObject. Legacy files are only read.
absl::StatusOr<RepairReport> RepairFromLegacy(contentlib::ContentLibrary& lib,
                                              const std::vector<Sha256Digest>& damaged,
                                              const std::string& legacy_root);

}  // namespace dpr::importer
