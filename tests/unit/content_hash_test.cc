// The content hash against a stream built independently here, element by
// element, from the rules of CONTENT_LIBRARY.md; then the properties those
// rules imply (order-independent input, case-insensitive sort, empty
// folders count).
#include "agent/contentlib/content_hash.h"

#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace dpr::contentlib {
namespace {

using ::dpr::testing::StatusIs;

Sha256Digest H(std::string_view data) {
  Sha256 s;
  s.Update(data);
  return s.Finish();
}

// UTF-16LE of ASCII text.
std::string U16(std::string_view ascii) {
  std::string out;
  for (char c : ascii) {
    out.push_back(c);
    out.push_back('\0');
  }
  return out;
}

TEST(ContentHashTest, MatchesTheDocumentedStream) {
  // Tree: b.txt, Setup.exe, A/x.bin, A/Sub/ (empty), c/ (empty).
  const auto hb = H("b"), hs = H("setup"), hx = H("x");
  std::vector<HashedFile> files = {{"b.txt", hb}, {"Setup.exe", hs}, {"A/x.bin", hx}};
  std::vector<std::string> dirs = {"A/Sub", "c"};
  // Root: subfolders A, c; files b.txt, Setup.exe; their hashes. Then A:
  // subfolder a\sub; file a\x.bin; its hash. Then A/Sub, then c: nothing.
  std::string stream = U16("a") + U16("c") + U16("b.txt") + U16("setup.exe") + U16(ToHex(hb)) +
                       U16(ToHex(hs)) + U16("a\\sub") + U16("a\\x.bin") + U16(ToHex(hx));
  auto got = ComputeContentHash(dirs, files);
  ASSERT_OK(got);
  EXPECT_EQ(*got, Sha256Hex(stream));
}

TEST(ContentHashTest, InputOrderDoesNotMatterButNamesAndBytesDo) {
  std::vector<HashedFile> a = {{"x/1.bin", H("1")}, {"2.bin", H("2")}};
  std::vector<HashedFile> b = {{"2.bin", H("2")}, {"x/1.bin", H("1")}};
  EXPECT_EQ(*ComputeContentHash({}, a), *ComputeContentHash({}, b));
  std::vector<HashedFile> renamed = {{"x/1.bin", H("1")}, {"3.bin", H("2")}};
  EXPECT_NE(*ComputeContentHash({}, a), *ComputeContentHash({}, renamed));
  std::vector<HashedFile> changed = {{"x/1.bin", H("1")}, {"2.bin", H("changed")}};
  EXPECT_NE(*ComputeContentHash({}, a), *ComputeContentHash({}, changed));
}

TEST(ContentHashTest, EmptyFoldersCount) {
  std::vector<HashedFile> files = {{"a.bin", H("a")}};
  EXPECT_NE(*ComputeContentHash({}, files), *ComputeContentHash({"empty"}, files));
}

TEST(ContentHashTest, SortIsByUpperCasedName) {
  // Ordinal byte order would put "B" before "a"; NTFS order puts "a" first.
  std::vector<HashedFile> files = {{"B.bin", H("b")}, {"a.bin", H("a")}};
  std::string stream = U16("a.bin") + U16("b.bin") + U16(ToHex(H("a"))) + U16(ToHex(H("b")));
  EXPECT_EQ(*ComputeContentHash({}, files), Sha256Hex(stream));
}

TEST(ContentHashTest, NonAsciiNamesAreUtf16AndLowerCased) {
  std::vector<HashedFile> files = {{"Ünicode.TXT", H("u")}};
  std::string stream;
  stream += std::string("\xFC\x00", 2);  // ü U+00FC, lower-cased from Ü U+00DC
  stream += U16("nicode.txt") + U16(ToHex(H("u")));
  EXPECT_EQ(*ComputeContentHash({}, files), Sha256Hex(stream));
}

TEST(ContentHashTest, InvalidUtf8IsRefused) {
  std::vector<HashedFile> files = {{"bad\xFF.bin", H("x")}};
  EXPECT_THAT(ComputeContentHash({}, files), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Utf8ToUtf16("\xC0\x80"), StatusIs(absl::StatusCode::kInvalidArgument));  // overlong
  EXPECT_THAT(Utf8ToUtf16("\xED\xA0\x80"),
              StatusIs(absl::StatusCode::kInvalidArgument));  // surrogate
  auto emoji = Utf8ToUtf16("\xF0\x9F\x98\x80");
  ASSERT_OK(emoji);
  EXPECT_EQ(*emoji, std::u16string(u"\U0001F600"));
}

}  // namespace
}  // namespace dpr::contentlib
