// ErrnoError keeps the errno, because one status code stands for causes
// that need different remedies; RaiseOpenFileLimit lifts the soft limit.
#include "common/status/status_macros.h"

#include <sys/resource.h>

#include <cerrno>

#include "common/fs/open_file_limit.h"
#include "gtest/gtest.h"

namespace dpr {
namespace {

TEST(StatusMacrosTest, ErrnoSurvivesAnnotate) {
  const absl::Status full = ErrnoError(ENOSPC, "write 'x'");
  const absl::Status files = Annotate(Annotate(ErrnoError(EMFILE, "open 'y'"), "b"), "a");
  EXPECT_EQ(full.code(), files.code());  // both RESOURCE_EXHAUSTED
  EXPECT_EQ(ErrnoOf(full), ENOSPC);
  EXPECT_EQ(ErrnoOf(files), EMFILE);
  EXPECT_EQ(files.message(), "a: b: open 'y': Too many open files");
  EXPECT_EQ(ErrnoOf(absl::ResourceExhaustedError("no errno")), std::nullopt);
  EXPECT_EQ(ErrnoOf(ErrnoError(0, "unknown")), std::nullopt);
}

TEST(StatusMacrosTest, RaiseOpenFileLimitLiftsTheSoftLimitToTheHardOne) {
  struct rlimit before {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  if (before.rlim_max < 200) GTEST_SKIP() << "hard limit too low to lower the soft one";
  struct rlimit low = before;
  low.rlim_cur = 128;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  auto raised = RaiseOpenFileLimit();
  struct rlimit after {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &before), 0);
  ASSERT_TRUE(raised.ok()) << raised.status();
  EXPECT_EQ(*raised, before.rlim_max);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
}

}  // namespace
}  // namespace dpr
