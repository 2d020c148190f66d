// SHA-256 against the FIPS 180-2 vectors, incremental and file hashing
// across block boundaries, and the hex forms the library relies on.
#include "common/hash/sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

using ::dpr::testing::StatusIs;

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
  EXPECT_EQ(Sha256Hex("abc"), "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248D6A61D20638B8E5C026930C3E6039A33CE45964FF2167F6ECEDD419DB06C1");
}

TEST(Sha256Test, IncrementalEqualsOneShotAndResets) {
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(ToHex(h.Finish()), Sha256Hex("abc"));
  h.Update("");
  EXPECT_EQ(ToHex(h.Finish()), Sha256Hex(""));
}

TEST(Sha256Test, FileHashAcrossSmallBlocks) {
  dpr::testing::TempDir dir;
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 7));
  dpr::testing::WriteFile(dir / "f", data);
  int fd = ::open((dir / "f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  auto digest = Sha256Fd(fd, "f", /*block_size=*/4093);
  ::close(fd);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(ToHex(*digest), Sha256Hex(data));
  auto whole = Sha256File(dir / "f");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(*whole, *digest);
}

TEST(Sha256Test, MissingFileNamesPath) {
  EXPECT_THAT(Sha256File("/nonexistent/x"),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("/nonexistent/x")));
}

TEST(Sha256Test, HexParsing) {
  const std::string hex = Sha256Hex("abc");
  auto parsed = ParseHexDigest(hex);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(ToHex(*parsed), hex);
  std::string lower = hex;
  for (char& c : lower) c = static_cast<char>(std::tolower(c));
  ASSERT_TRUE(ParseHexDigest(lower).ok());
  EXPECT_TRUE(IsUpperHexDigest(hex));
  EXPECT_FALSE(IsUpperHexDigest(lower));
  EXPECT_THAT(ParseHexDigest(hex.substr(1)), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseHexDigest(std::string(63, 'A') + "G"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace dpr
