// Preflight: duplicates found and space computed per mode; a missing or
// hostile package folder, a NO_SMS_ON_DRIVE.SMS marker and too little space
// each refuse with the reason. The last two use a real tiny tmpfs (as root).
#include "agent/importer/preflight.h"

#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"

namespace dpr::importer {
namespace {

using ::dpr::testing::MakeTree;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class PreflightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    legacy_ = dir_ / "legacy";
    MakeTree(legacy_ + "/ABC00001", {{"a.bin", std::string(10000, 'a')},
                                     {"same-size-other.bin", std::string(10000, 'b')},
                                     {"sub/dup-of-a.bin", std::string(10000, 'a')}});
    MakeTree(legacy_ + "/ABC00002",
             {{"a-again.bin", std::string(10000, 'a')}, {"unique.bin", std::string(777, 'u')}});
  }
  std::vector<PackageSpec> Specs() {
    return {{"ABC00001", 1, legacy_ + "/ABC00001", false},
            {"ABC00002", 1, legacy_ + "/ABC00002", false}};
  }
  dpr::testing::TempDir dir_;
  std::string legacy_;
};

TEST_F(PreflightTest, FindsDuplicatesAndSpacePerMode) {
  auto copy = Preflight(PosixFileSystem(), dir_ / "content", Specs(), ImportMode::kCopy);
  ASSERT_OK(copy);
  EXPECT_TRUE(copy->ok) << copy->refusal;
  EXPECT_EQ(copy->files_total, 5u);
  EXPECT_EQ(copy->bytes_total, 40777u);
  EXPECT_EQ(copy->bytes_unique, 20777u);  // 'a' x10000, 'b' x10000, 'u' x777
  EXPECT_EQ(copy->bytes_duplicate, 20000u);
  EXPECT_EQ(copy->largest_package_bytes, 30000u);
  EXPECT_TRUE(copy->same_filesystem);
  auto link = Preflight(PosixFileSystem(), dir_ / "content", Specs(), ImportMode::kAuto);
  ASSERT_OK(link);
  EXPECT_EQ(link->effective_mode, ImportMode::kLink);
  // Linking stores no bytes, only INIs and folders; copying stores the
  // unique bytes on top of that.
  EXPECT_LT(link->bytes_needed, copy->bytes_needed);
  EXPECT_GE(copy->bytes_needed - link->bytes_needed, 20777u);
}

TEST_F(PreflightTest, MissingAndHostileFoldersRefuseNamingThePackage) {
  ASSERT_EQ(::symlink("/etc/passwd", (legacy_ + "/ABC00002/passwd").c_str()), 0);
  auto r = Preflight(PosixFileSystem(), dir_ / "content", Specs(), ImportMode::kCopy);
  ASSERT_OK(r);
  EXPECT_FALSE(r->ok);
  EXPECT_THAT(std::string(r->refusal.message()), HasSubstr("package 'ABC00002'"));
  EXPECT_THAT(std::string(r->refusal.message()), HasSubstr("'passwd'"));
  auto missing = Preflight(PosixFileSystem(), dir_ / "content",
                           {{"ABC00009", 1, legacy_ + "/ABC00009", false}}, ImportMode::kCopy);
  ASSERT_OK(missing);
  EXPECT_FALSE(missing->ok);
  EXPECT_FALSE(missing->packages[0].found);
}

// A tmpfs of `size` mounted at dir/<name>, unmounted at the end.
class TinyFs {
 public:
  TinyFs(const std::string& path, const char* size) : path_(path) {
    fs::create_directories(path);
    mounted_ =
        ::mount("tmpfs", path.c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) == 0;
  }
  ~TinyFs() {
    if (mounted_) ::umount(path_.c_str());
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST_F(PreflightTest, TooLittleSpaceIsRefusedWithBothFigures) {
  TinyFs tiny(dir_ / "tiny", "64k");
  if (!tiny.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  auto r = Preflight(PosixFileSystem(), dir_ / "tiny/content", Specs(), ImportMode::kAuto);
  ASSERT_OK(r);
  EXPECT_FALSE(r->ok);
  EXPECT_FALSE(r->same_filesystem);
  EXPECT_EQ(r->effective_mode, ImportMode::kCopy);
  EXPECT_EQ(r->refusal.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(r->refusal.message()), HasSubstr("not enough space"));
  EXPECT_THAT(std::string(r->refusal.message()), HasSubstr("need"));
  EXPECT_GT(r->bytes_needed, r->bytes_free);
}

TEST_F(PreflightTest, NoSmsOnDriveMarkerRefuses) {
  TinyFs tiny(dir_ / "drive", "16m");
  if (!tiny.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  auto ok = Preflight(PosixFileSystem(), dir_ / "drive/content", Specs(), ImportMode::kCopy);
  ASSERT_OK(ok);
  EXPECT_TRUE(ok->ok) << ok->refusal;
  dpr::testing::WriteFile(dir_ / "drive/NO_SMS_ON_DRIVE.SMS", "");
  auto r = Preflight(PosixFileSystem(), dir_ / "drive/content", Specs(), ImportMode::kCopy);
  ASSERT_OK(r);
  EXPECT_TRUE(r->no_sms_on_drive);
  EXPECT_FALSE(r->ok);
  EXPECT_THAT(std::string(r->refusal.message()), HasSubstr("NO_SMS_ON_DRIVE.SMS"));
}

}  // namespace
}  // namespace dpr::importer
