// The content hash written to DataLib/<ContentID>.INI [Info] Hash=. The
// algorithm is public but reverse-engineered and may change, so it lives
// behind this one function (CONTENT_LIBRARY.md):
//
// one SHA-256 over UTF-16LE text (no BOM), uppercase hex. Walk the tree
// pre-order from the package root; for each folder emit, in order: the
// relative path of each subfolder, the relative path of each file, then each
// file's SHA-256 as uppercase hex; then descend into each subfolder in turn.
// Relative paths are lower-cased, use '\' and have no leading separator.
// Children are ordered by their upper-cased UTF-16 names (ordinal), as NTFS
// lists them. Empty folders count.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/hash/sha256.h"

namespace dpr::contentlib {

struct HashedFile {
  std::string rel_path;  // '/'-separated, UTF-8, relative to the package root
  Sha256Digest hash;
};

// `dirs`: every folder below the root ('/'-separated), empty ones included;
// folders that only appear as a file's parent may be omitted.
// InvalidArgument for a name that is not valid UTF-8.
absl::StatusOr<std::string> ComputeContentHash(const std::vector<std::string>& dirs,
                                               const std::vector<HashedFile>& files);

// UTF-8 → UTF-16; InvalidArgument for invalid UTF-8 (overlong, surrogates, ...).
absl::StatusOr<std::u16string> Utf8ToUtf16(std::string_view utf8);
// Simple case mapping for ASCII, Latin-1, Greek and Cyrillic (ours: the rest
// of Unicode is left as is).
char16_t ToLower16(char16_t c);
char16_t ToUpper16(char16_t c);

}  // namespace dpr::contentlib
