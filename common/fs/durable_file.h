// Durable, atomic whole-file writes: temp file in the destination folder,
// write, fsync, rename over the final name, fsync the folder. A crash at any
// instant leaves the old file or the new one, never a mix; a leftover temp
// file carries kTempInfix in its name so a start-up sweep can find it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dpr {

// Every temp file this project writes has this in its name.
inline constexpr std::string_view kTempInfix = ".dprtmp.";

struct WriteOptions {
  mode_t mode = 0644;
  // Fail with AlreadyExists instead of replacing an existing file (for keys
  // and CA material that must never be overwritten by accident).
  bool no_replace = false;
};

// Writes `data` to `path` durably and atomically. On failure the temp file is
// removed and `path` is unchanged. Errors name the path and the system call.
absl::Status WriteFileDurably(const std::string& path, std::string_view data,
                              const WriteOptions& options = {});

// fsync of a folder, so a rename or create inside it survives power loss.
absl::Status FsyncDir(const std::string& dir);

// Reads a whole file; FailedPrecondition if it is larger than max_bytes.
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             uint64_t max_bytes = 64 << 20);

// Creates `dir` and missing parents with `mode` (like mkdir -p), fsyncing
// each parent it created into.
absl::Status MakeDirs(const std::string& dir, mode_t mode = 0755);

// Name for a temp file beside `final_path`: "<dir>/.<base>.dprtmp.<pid>.<n>".
std::string TempPathFor(const std::string& final_path);

// The same inside `dir` for `base`. Unique within this machine: the process
// ID is asked once (and again in a forked child), n counts up.
std::string TempName(std::string_view dir, std::string_view base);

bool IsTempName(std::string_view file_name);

}  // namespace dpr
