// The walk refuses every hostile entry of RELIABILITY.md row 10 with its
// name, and never follows anything out of the package folder.
#include "agent/importer/tree_walker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <map>
#include <set>

#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"

namespace dpr::importer {
namespace {

using ::dpr::testing::MakeTree;
using ::dpr::testing::StatusIs;
using ::testing::HasSubstr;

class TreeWalkerTest : public ::testing::Test {
 protected:
  std::string Pkg() { return dir_ / "ABC00001"; }
  absl::StatusOr<WalkedTree> Walk() {
    int fd = ::open(Pkg().c_str(), O_RDONLY | O_DIRECTORY);
    EXPECT_GE(fd, 0);
    auto tree = WalkPackage(PosixFileSystem(), fd);
    ::close(fd);
    return tree;
  }
  void ExpectRefused(std::string_view entry) {
    EXPECT_THAT(Walk(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(entry)));
  }
  dpr::testing::TempDir dir_;
};

TEST_F(TreeWalkerTest, WalksFilesAndEmptyFolders) {
  MakeTree(Pkg(), {{"setup.exe", "abc"}, {"x64/data.cab", "12345"}, {"empty/", ""}});
  auto tree = Walk();
  ASSERT_OK(tree);
  EXPECT_EQ(tree->files.size(), 2u);
  EXPECT_EQ(tree->bytes, 8u);
  std::set<std::string> dirs;
  for (const auto& d : tree->dirs) dirs.insert(d.rel);
  EXPECT_EQ(dirs, (std::set<std::string>{"", "x64", "empty"}));
  std::set<std::string> files;
  for (const auto& f : tree->files) files.insert(f.rel);
  EXPECT_EQ(files, (std::set<std::string>{"setup.exe", "x64/data.cab"}));
}

// A folder whose entries take several directory reads (32 KiB each): every
// entry is walked once, and a second listing of the same fd starts over.
TEST_F(TreeWalkerTest, WalksAFolderTooLargeForOneDirectoryRead) {
  std::map<std::string, std::string> files;
  for (int i = 0; i < 1500; ++i) files[fmt::format("a-rather-long-file-name-{:06}.dat", i)] = "x";
  MakeTree(Pkg(), files);
  auto tree = Walk();
  ASSERT_OK(tree);
  std::set<std::string> walked;
  for (const auto& f : tree->files) walked.insert(f.rel);
  EXPECT_EQ(walked.size(), 1500u);
  EXPECT_EQ(tree->files.size(), 1500u);
  int fd = ::open(Pkg().c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  auto first = PosixFileSystem()->ReadDir(fd);
  auto again = PosixFileSystem()->ReadDir(fd);
  ::close(fd);
  ASSERT_OK(first);
  ASSERT_OK(again);
  EXPECT_EQ(first->size(), 1500u);
  EXPECT_EQ(again->size(), 1500u);
}

TEST_F(TreeWalkerTest, RefusesSymlinkOutOfTheTree) {
  MakeTree(Pkg(), {{"ok.txt", "x"}});
  dpr::testing::MakeFile(dir_ / "secret", "outside");
  ASSERT_EQ(::symlink((dir_ / "secret").c_str(), (Pkg() + "/sub-link").c_str()), 0);
  ExpectRefused("'sub-link': a symbolic link");
}

TEST_F(TreeWalkerTest, RefusesSymlinkInsideAndSymlinkedFolder) {
  MakeTree(Pkg(), {{"a/real.txt", "x"}});
  ASSERT_EQ(::symlink("real.txt", (Pkg() + "/a/alias.txt").c_str()), 0);
  ExpectRefused("a/alias.txt");
  ::unlink((Pkg() + "/a/alias.txt").c_str());
  ASSERT_EQ(::symlink("/etc", (Pkg() + "/etc").c_str()), 0);
  ExpectRefused("'etc': a symbolic link");
}

TEST_F(TreeWalkerTest, RefusesFifoAndDeviceFiles) {
  MakeTree(Pkg(), {{"ok.txt", "x"}});
  ASSERT_EQ(::mkfifo((Pkg() + "/pipe").c_str(), 0644), 0);
  ExpectRefused("'pipe': a FIFO");
  ::unlink((Pkg() + "/pipe").c_str());
  if (::mknod((Pkg() + "/null").c_str(), S_IFCHR | 0644, makedev(1, 3)) != 0) {
    GTEST_SKIP() << "cannot make a device file here (not root)";
  }
  ExpectRefused("'null': a device file");
}

TEST_F(TreeWalkerTest, RefusesNamesWindowsCannotHold) {
  const char* bad[] = {"new\nline.txt", "back\\slash.txt", "colon:.txt",     "star*.txt",
                       "trailing.",     "trailing ",       "bad\xFFutf8.txt"};
  for (const char* name : bad) {
    std::filesystem::remove_all(Pkg());
    MakeTree(Pkg(), {{"ok.txt", "x"}});
    dpr::testing::MakeFile(Pkg() + "/" + name, "x");
    EXPECT_THAT(Walk(), StatusIs(absl::StatusCode::kFailedPrecondition)) << name;
  }
}

TEST_F(TreeWalkerTest, RefusesCaseTwins) {
  MakeTree(Pkg(), {{"Setup.exe", "a"}, {"SETUP.EXE", "b"}});
  ExpectRefused("differs from it only in case");
}

TEST_F(TreeWalkerTest, RefusesPathsOver4096Bytes) {
  std::string rel;
  const std::string part(200, 'd');
  for (int i = 0; i < 21; ++i) rel += (rel.empty() ? "" : "/") + part;
  // Build it with relative mkdirat so no single path string is too long.
  MakeTree(Pkg(), {});
  int fd = ::open(Pkg().c_str(), O_RDONLY | O_DIRECTORY);
  for (int i = 0; i < 21; ++i) {
    ASSERT_EQ(::mkdirat(fd, part.c_str(), 0755), 0);
    int next = ::openat(fd, part.c_str(), O_RDONLY | O_DIRECTORY);
    ::close(fd);
    fd = next;
  }
  ::close(fd);
  ExpectRefused("path longer than 4096 bytes");
}

TEST_F(TreeWalkerTest, HardLinksAreWalkedWithTheirLinkCount) {
  MakeTree(Pkg(), {{"a.bin", "shared"}});
  dpr::testing::MakeFile(dir_ / "outside.bin", "outside");
  ASSERT_EQ(::link((dir_ / "outside.bin").c_str(), (Pkg() + "/b.bin").c_str()), 0);
  auto tree = Walk();
  ASSERT_OK(tree);
  for (const auto& f : tree->files) EXPECT_EQ(f.nlink, f.name == "b.bin" ? 2u : 1u) << f.name;
}

TEST_F(TreeWalkerTest, WalkedDirsNoticeAFolderSwappedForASymlink) {
  MakeTree(Pkg(), {{"a/x.bin", "x"}});
  auto tree = Walk();
  ASSERT_OK(tree);
  std::filesystem::rename(Pkg() + "/a", dir_ / "moved");
  std::filesystem::create_directories(dir_ / "elsewhere");
  ASSERT_EQ(::symlink((dir_ / "elsewhere").c_str(), (Pkg() + "/a").c_str()), 0);
  int fd = ::open(Pkg().c_str(), O_RDONLY | O_DIRECTORY);
  size_t index = 0;
  for (size_t i = 0; i < tree->dirs.size(); ++i) {
    if (tree->dirs[i].rel == "a") index = i;
  }
  auto opened = WalkedDirs(PosixFileSystem(), fd, *tree).Get(index);
  ::close(fd);
  EXPECT_FALSE(opened.ok());
}

}  // namespace
}  // namespace dpr::importer
