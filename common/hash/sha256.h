// SHA-256 over OpenSSL's EVP interface, which uses the CPU's SHA
// instructions (Debian's sha256sum does not). Digests are written as 64
// upper-case hex digits, the form the content library uses.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dpr {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental hasher. Not thread-safe; one per stream of bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Returns the digest and resets the hasher for a new stream.
  Sha256Digest Finish();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// 64 upper-case hex digits.
std::string ToHex(const Sha256Digest& digest);
// Parses 64 hex digits (either case); InvalidArgument otherwise.
absl::StatusOr<Sha256Digest> ParseHexDigest(std::string_view hex);
bool IsUpperHexDigest(std::string_view hex);

std::string Sha256Hex(std::string_view data);

// Hashes a whole open file from its current offset in `block_size` reads.
// The fd is not closed. Errors name `name_for_errors`.
absl::StatusOr<Sha256Digest> Sha256Fd(int fd, std::string_view name_for_errors,
                                      size_t block_size = 1 << 20);
absl::StatusOr<Sha256Digest> Sha256File(const std::string& path);

}  // namespace dpr
