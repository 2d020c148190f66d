// Durable writes: contents and mode as asked, replace vs. no-replace, and no
// temp file left behind on success or failure.
#include "common/fs/durable_file.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "fmt/format.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

using ::dpr::testing::StatusIs;
using ::testing::HasSubstr;

int CountTemps(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (IsTempName(e.path().filename().string())) ++n;
  }
  return n;
}

TEST(DurableFileTest, WritesAndReplaces) {
  dpr::testing::TempDir dir;
  const std::string path = dir / "a.INI";
  ASSERT_OK(WriteFileDurably(path, "one"));
  ASSERT_OK(WriteFileDurably(path, "two"));
  auto read = ReadFileToString(path);
  ASSERT_OK(read);
  EXPECT_EQ(*read, "two");
  EXPECT_EQ(CountTemps(dir.path()), 0);
}

TEST(DurableFileTest, ModeIsExactDespiteUmask) {
  dpr::testing::TempDir dir;
  mode_t old = ::umask(0);
  ASSERT_OK(WriteFileDurably(dir / "k.key", "secret", {.mode = 0600}));
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat((dir / "k.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(DurableFileTest, NoReplaceRefusesAndKeepsOriginal) {
  dpr::testing::TempDir dir;
  ASSERT_OK(WriteFileDurably(dir / "ca.key", "original", {.no_replace = true}));
  EXPECT_THAT(WriteFileDurably(dir / "ca.key", "new", {.no_replace = true}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("ca.key")));
  EXPECT_EQ(*ReadFileToString(dir / "ca.key"), "original");
  EXPECT_EQ(CountTemps(dir.path()), 0);
}

TEST(DurableFileTest, MissingFolderFailsNamingIt) {
  EXPECT_THAT(WriteFileDurably("/nonexistent-dir/x", "data"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent-dir/")));
}

TEST(DurableFileTest, ReadLimitAndMakeDirs) {
  dpr::testing::TempDir dir;
  ASSERT_OK(WriteFileDurably(dir / "big", std::string(1000, 'x')));
  EXPECT_THAT(ReadFileToString(dir / "big", 999), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(MakeDirs(dir / "a/b/c"));
  EXPECT_TRUE(std::filesystem::is_directory(dir / "a/b/c"));
  ASSERT_OK(MakeDirs(dir / "a/b/c"));  // idempotent
  EXPECT_THAT(MakeDirs(dir / "big/x"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(DurableFileTest, TempNamesAreRecognisable) {
  const std::string tmp = TempPathFor("/lib/FileLib/1A2B/1A2B00");
  EXPECT_EQ(tmp.rfind("/lib/FileLib/1A2B/.1A2B00", 0), 0u) << tmp;
  EXPECT_TRUE(IsTempName(std::filesystem::path(tmp).filename().string()));
  EXPECT_FALSE(IsTempName("1A2B00.INI"));
  EXPECT_NE(TempPathFor("/x/y"), TempPathFor("/x/y"));
}

// The process ID in temp names is asked once: a forked child must still name
// its temps with its own (two processes' temps must never share a name).
TEST(DurableFileTest, AForkedChildNamesTempsWithItsOwnProcessId) {
  const std::string parent = TempName("/x", "y");
  EXPECT_NE(parent.find(fmt::format("{}{}.", kTempInfix, ::getpid())), std::string::npos) << parent;
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string name = TempName("/x", "y");
    (void)!::write(fds[1], name.data(), name.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[256];
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_GT(n, 0);
  const std::string from_child(buf, static_cast<size_t>(n));
  EXPECT_NE(from_child.find(fmt::format("{}{}.", kTempInfix, child)), std::string::npos)
      << from_child;
}

}  // namespace
}  // namespace dpr
