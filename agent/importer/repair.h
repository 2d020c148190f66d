// Repairs damaged or missing FileLib objects from legacy copies of their
// bytes (RELIABILITY row 9: "re-import from the legacy copy where one
// exists"), e.g. a kept package share or a package not yet converted.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/contentlib/content_library.h"

namespace dpr::importer {

struct RepairReport {
  uint64_t damaged = 0;       // objects verify found damaged or missing
  uint64_t files_seen = 0;    // legacy files listed
  uint64_t files_hashed = 0;  // ...and read, being of a damaged object's size
  uint64_t bytes_hashed = 0;
  std::vector<std::string> repaired;    // object hashes, replaced from...
  std::vector<std::string> sources;     // ...these legacy files (same order)
  std::vector<std::string> unrepaired;  // no legacy copy has their bytes
  // Folders below the legacy root that could not be read, and the first few
  // of them: a copy may be in one, so the admin hears of them.
  uint64_t folders_unreadable = 0;
  std::vector<std::string> unreadable;
};

struct RepairOptions {
  // Called as the search goes (phase kRepair; the caller throttles).
  std::function<void(const VerifyProgress&)> progress;
  // Asked before each folder and each file hashed: true ends the repair with
  // CANCELLED, keeping what was put back so far.
  std::function<bool()> stop;
};

// The objects `problems` (from ContentLibrary::Verify) name as damaged
// (hash or size mismatch) or missing.
std::vector<Sha256Digest> DamagedObjects(const std::vector<contentlib::VerifyProblem>& problems);

// Looks below `legacy_root` (regular files only, symlinks not followed) for
// files whose bytes hash to a damaged object and puts each such copy in
// place with ContentLibrary::ReplaceObject. Legacy files are only read. A
// folder that cannot be read is counted and skipped; only an unreadable
// legacy root is an error.
absl::StatusOr<RepairReport> RepairFromLegacy(contentlib::ContentLibrary& lib,
                                              const std::vector<Sha256Digest>& damaged,
                                              const std::string& legacy_root,
                                              const RepairOptions& options = {});

// An admin's verify, from `dp-agent verify` or the agent's verify call: the
// check, and with `repair`, when it finds damage, the search of the legacy
// root for copies (under the library's exclusive lock) and the check again.
struct VerifyAndRepairOptions {
  bool rehash = true;
  bool repair = false;
  std::string legacy_root;  // where a repair looks for copies
  // Each phase's progress, VerifyProgress::phase saying which (the caller
  // throttles).
  contentlib::VerifyProgressFn progress;
  // Asked as the work goes: true ends it with CANCELLED.
  std::function<bool()> stop;
};

struct VerifyAndRepairReport {
  contentlib::VerifyResult result;     // the last check: what is left after a repair
  std::optional<RepairReport> repair;  // set when a repair ran
};

// Errors say which step stopped: "check stopped: ...", "repair not started:
// ...", "repair stopped: ...", "check after the repair stopped: ...".
absl::StatusOr<VerifyAndRepairReport> VerifyAndRepair(contentlib::ContentLibrary& lib,
                                                      const VerifyAndRepairOptions& options);

}  // namespace dpr::importer
