// Converts legacy package folders into contents of the library (the seed's
// step 8 as the DP sees it). For each package: walk it safely, hash every
// file, store each file once in FileLib (hard link on the same filesystem,
// else a copy), write its DataLib tree and INI, then its PkgLib INI, and only
// then remove its legacy files, unless it keeps its package share.
//
// Speed: files are read, hashed and written by `jobs` workers in parallel;
// memory is bounded by the workers (one buffer each) and the task queue, not
// by the size of a file. Durability costs one syncfs per batch of packages
// instead of an fsync per file: stage, sync, publish, sync, commit, sync.
//
// Crash safety: nothing reaches a final name before its bytes are durable;
// a re-run skips committed packages (finishing their legacy clean-up) and
// reuses objects already in FileLib without copying them again.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/contentlib/content_library.h"

namespace dpr::importer {

enum class ImportMode { kAuto, kCopy, kLink };
std::string_view ModeName(ImportMode mode);
absl::StatusOr<ImportMode> ParseMode(std::string_view name);

struct PackageSpec {
  std::string package_id;
  uint32_t version = 1;
  std::string location;  // the legacy package folder (absolute)
  bool keep_package_share = false;
};

struct ImportOptions {
  ImportMode mode = ImportMode::kAuto;
  int jobs = 0;                         // 0: the machine's cores
  uint64_t batch_bytes = 512ull << 20;  // sync after this much was read...
  size_t batch_packages = 128;          // ...or this many packages, unless
                                        // what is left is at most an eighth
                                        // of both: it joins this batch
  // Also fsync every staged object and INI as it is written (the naive way,
  // kept to measure what batching saves; the batch syncs still run).
  bool fsync_each_file = false;
  // Each worker's read buffer: files up to this size are read whole; larger
  // ones are streamed through it. Tests shrink it to reach the streamed paths
  // with small files.
  size_t buffer_bytes = 8 << 20;
};

struct ImportEvent {
  enum class Kind { kPackageStarted, kPackageProgress, kPackageDone, kPackageFailed };
  Kind kind;
  std::string package_id;
  std::string content_id;
  uint64_t files_done = 0, files_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;
  uint64_t bytes_stored = 0;        // new in FileLib (copied or linked)
  uint64_t bytes_deduplicated = 0;  // already in FileLib
  bool already_done = false;
  bool legacy_removed = false;
  // Set when the legacy folder should have gone but some of its files were
  // left because the library may not hold their bytes (changed since they
  // were imported, or new): which, and why.
  std::string legacy_kept;
  std::string current_file;
  absl::Status error;
};

// Called for every event, from one thread at a time (never concurrently).
using ImportCallback = std::function<void(const ImportEvent&)>;

struct ImportSummary {
  uint64_t packages_done = 0;  // including already_done
  uint64_t packages_already = 0;
  uint64_t packages_failed = 0;
  uint64_t files = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_stored = 0;
  uint64_t bytes_deduplicated = 0;
  double seconds = 0;
  // Where the coordinator's time went (for benchmarks): walking package
  // trees, waiting for workers at batch ends, inside syncfs, and the rest of
  // publishing batches (renames, INIs, legacy removal).
  double seconds_walk = 0, seconds_wait = 0, seconds_sync = 0, seconds_publish = 0;
  uint64_t batches = 0;
};

// Imports `packages` into `lib`. A package that fails (refused entry, I/O
// error on its files) is reported and left untouched; the others go on. A
// failure of the library itself (no space, a failed sync) stops the run with
// that error, after removing its temp files.
absl::StatusOr<ImportSummary> ImportPackages(contentlib::ContentLibrary& lib,
                                             const std::vector<PackageSpec>& packages,
                                             const ImportOptions& options,
                                             const ImportCallback& on_event);

}  // namespace dpr::importer
