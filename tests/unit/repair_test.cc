// RepairFromLegacy beyond the happy path (that one is in
// convert_integration_test): a folder it cannot read is skipped and named,
// not the end of the search; progress tells how far the search is; a caller
// that leaves stops it. Then VerifyAndRepair, the admin's verify that both
// `dp-agent verify` and the agent's verify call run.
#include "agent/importer/repair.h"

#include <fcntl.h>

#include <filesystem>
#include <map>
#include <string>

#include "agent/contentlib/content_library.h"
#include "agent/importer/importer.h"
#include "common/hash/sha256.h"
#include "common/log/verify_progress.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/fault_file_system.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_support.h"
#include "tests/support/tree_fixture.h"

namespace dpr::importer {
namespace {

using contentlib::ContentLibrary;
using ::dpr::testing::FaultFileSystem;
using ::dpr::testing::ReadFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

class RepairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "scratch");
    dpr::testing::MakeTree(dir_ / "legacy", {{"ABC00001/a.bin", kA}, {"ABC00001/b.bin", kB}});
    {
      auto lib = ContentLibrary::Open(PosixFileSystem(), dir_ / "content");
      ASSERT_OK(lib);
      ASSERT_OK(ImportPackages(**lib, {{"ABC00001", 1, dir_ / "legacy/ABC00001", false}},
                               {.mode = ImportMode::kCopy, .jobs = 2}, nullptr));
    }
    // Both objects damaged; copies of their bytes are left in two folders of
    // a spare share, with unrelated files of the same sizes around them.
    for (const auto* data : {&kA, &kB}) {
      std::string bytes = *data;
      bytes[0] ^= 0x01;
      dpr::testing::WriteFile(Object(*data), bytes);
    }
    std::map<std::string, std::string> spare{{"first/copy-of-a.bin", kA},
                                             {"second/deeper/copy-of-b.bin", kB}};
    for (int i = 0; i < 40; ++i) {
      spare[fmt::format("first/other{}.bin", i)] = std::string(kA.size(), 'x') + std::to_string(i);
    }
    dpr::testing::MakeTree(dir_ / "spare", spare);
    fault_ = std::make_unique<FaultFileSystem>(dir_ / "scratch");
    auto lib = ContentLibrary::OpenExisting(fault_.get(), dir_ / "content");
    ASSERT_OK(lib);
    lib_ = std::move(*lib);
    ASSERT_OK(lib_->LockForWriting());
    auto result = lib_->Verify();
    ASSERT_OK(result);
    damaged_ = DamagedObjects(result->problems);
    ASSERT_EQ(damaged_.size(), 2u);
  }

  std::string Object(const std::string& data) const {
    const std::string h = Sha256Hex(data);
    return dir_ / ("content/SCCMContentLib/FileLib/" + h.substr(0, 4) + "/" + h);
  }

  const std::string kA = std::string(5000, 'a'), kB = std::string(7000, 'b');
  dpr::testing::TempDir dir_;
  std::unique_ptr<FaultFileSystem> fault_;
  std::unique_ptr<ContentLibrary> lib_;
  std::vector<Sha256Digest> damaged_;
};

TEST_F(RepairTest, AnUnreadableFolderIsSkippedAndNamedNotTheEndOfTheSearch) {
  // Two folders side by side; the one the search reads first (it takes the
  // last one listed first) cannot be read, and the other holds the copies.
  const std::string side = dir_ / "side";
  fs::create_directories(side + "/p");
  fs::create_directories(side + "/q");
  auto fd = PosixFileSystem()->OpenAt(AT_FDCWD, side, O_RDONLY | O_DIRECTORY);
  ASSERT_OK(fd);
  ScopedFd dir(PosixFileSystem(), *fd);
  auto entries = PosixFileSystem()->ReadDir(dir.get());
  ASSERT_OK(entries);
  std::vector<std::string> listed;
  for (const auto& e : *entries) listed.push_back(e.name);
  ASSERT_EQ(listed.size(), 2u);
  dpr::testing::MakeFile(side + "/" + listed[0] + "/copy-of-a.bin", kA);
  dpr::testing::MakeFile(side + "/" + listed[0] + "/copy-of-b.bin", kB);
  fault_->FailOpensOf(side + "/" + listed[1], EACCES);
  auto report = RepairFromLegacy(*lib_, damaged_, side);
  ASSERT_OK(report);
  EXPECT_EQ(report->repaired.size(), 2u);
  EXPECT_TRUE(report->unrepaired.empty());
  EXPECT_EQ(report->folders_unreadable, 1u);
  EXPECT_THAT(report->unreadable, ElementsAre(side + "/" + listed[1]));
  EXPECT_EQ(ReadFile(Object(kA)), kA);
  EXPECT_EQ(ReadFile(Object(kB)), kB);
  EXPECT_TRUE(lib_->Verify()->ok());
}

TEST_F(RepairTest, AnObjectWhoseOnlyCopyIsUnreadableIsNamedNotRepaired) {
  fault_->FailOpensOf("/spare/first", EACCES);
  auto report = RepairFromLegacy(*lib_, damaged_, dir_ / "spare");
  ASSERT_OK(report);
  EXPECT_THAT(report->repaired, ElementsAre(Sha256Hex(kB)));
  EXPECT_THAT(report->unrepaired, ElementsAre(Sha256Hex(kA)));
  EXPECT_THAT(report->unreadable, ElementsAre(dir_ / "spare/first"));
  EXPECT_EQ(ReadFile(Object(kB)), kB);
}

TEST_F(RepairTest, AnUnreadableLegacyRootIsAnError) {
  fault_->FailOpensOf("/spare", EACCES);
  auto report = RepairFromLegacy(*lib_, damaged_, dir_ / "spare");
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(std::string(report.status().message()), HasSubstr("cannot read legacy root"));
  auto missing = RepairFromLegacy(*lib_, damaged_, dir_ / "nowhere");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST_F(RepairTest, ProgressCountsTheSearchAndEndsWithWhatWasPutBack) {
  std::vector<VerifyProgress> seen;
  RepairOptions options;
  options.progress = [&](const VerifyProgress& p) { seen.push_back(p); };
  auto report = RepairFromLegacy(*lib_, damaged_, dir_ / "spare", options);
  ASSERT_OK(report);
  ASSERT_EQ(report->repaired.size(), 2u);
  ASSERT_FALSE(seen.empty());
  const VerifyProgress& last = seen.back();
  EXPECT_EQ(last.phase, VerifyPhase::kRepair);
  EXPECT_EQ(last.objects_damaged, 2u);
  EXPECT_EQ(last.objects_repaired, 2u);
  EXPECT_EQ(last.legacy_files_seen, report->files_seen);
  EXPECT_EQ(last.legacy_files_hashed, report->files_hashed);
  EXPECT_EQ(last.legacy_bytes_hashed, report->bytes_hashed);
  // Only files of a damaged object's size are read: the 40 others differ
  // in size by their suffix.
  EXPECT_EQ(report->files_hashed, 2u);
  EXPECT_GE(report->files_seen, 2u);
  EXPECT_EQ(report->bytes_hashed, kA.size() + kB.size());
  EXPECT_THAT(VerifyProgressText(last, 3), HasSubstr("repairing: 2/2 objects put back"));
}

TEST_F(RepairTest, ACallerThatLeftStopsTheSearch) {
  RepairOptions options;
  options.stop = [] { return true; };
  auto report = RepairFromLegacy(*lib_, damaged_, dir_ / "spare", options);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kCancelled) << report.status();
  EXPECT_NE(ReadFile(Object(kA)), kA);
  EXPECT_NE(ReadFile(Object(kB)), kB);
}

// VerifyAndRepair runs on a library opened for reading, as a verify opens it.
class VerifyAndRepairTest : public RepairTest {
 protected:
  void SetUp() override {
    RepairTest::SetUp();
    lib_.reset();
    auto lib = ContentLibrary::OpenExisting(fault_.get(), dir_ / "content");
    ASSERT_OK(lib);
    lib_ = std::move(*lib);
  }

  // A repair from `legacy_root` whose progress is kept in seen_.
  VerifyAndRepairOptions Watched(const std::string& legacy_root) {
    VerifyAndRepairOptions options;
    options.repair = true;
    options.legacy_root = legacy_root;
    options.progress = [this](const VerifyProgress& p) { seen_.push_back(p); };
    return options;
  }

  // The phases progress went through, each once, in order.
  std::vector<VerifyPhase> Phases() const {
    std::vector<VerifyPhase> phases;
    for (const auto& p : seen_) {
      if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
    }
    return phases;
  }

  std::vector<VerifyProgress> seen_;
};

TEST_F(VerifyAndRepairTest, PutsBackWhatItFindsAndReportsTheCheckAfterIt) {
  auto verified = VerifyAndRepair(*lib_, Watched(dir_ / "spare"));
  ASSERT_OK(verified);
  ASSERT_TRUE(verified->repair.has_value());
  EXPECT_EQ(verified->repair->damaged, 2u);
  EXPECT_EQ(verified->repair->repaired.size(), 2u);
  // The report is the second check's: nothing left.
  EXPECT_TRUE(verified->result.ok()) << verified->result.problems.front().detail;
  EXPECT_EQ(verified->result.objects, 2u);
  EXPECT_THAT(Phases(),
              ElementsAre(VerifyPhase::kCheck, VerifyPhase::kRepair, VerifyPhase::kRecheck));
  EXPECT_EQ(ReadFile(Object(kA)), kA);
  EXPECT_EQ(ReadFile(Object(kB)), kB);
}

TEST_F(VerifyAndRepairTest, WithNothingPutBackTheFirstCheckStandsAndIsNotRunAgain) {
  fs::create_directories(dir_ / "empty");
  auto verified = VerifyAndRepair(*lib_, Watched(dir_ / "empty"));
  ASSERT_OK(verified);
  ASSERT_TRUE(verified->repair.has_value());
  EXPECT_EQ(verified->repair->unrepaired.size(), 2u);
  EXPECT_EQ(DamagedObjects(verified->result.problems).size(), 2u);
  EXPECT_THAT(Phases(), ElementsAre(VerifyPhase::kCheck, VerifyPhase::kRepair));
}

TEST_F(VerifyAndRepairTest, WithoutRepairTheDamageIsOnlyReported) {
  auto verified = VerifyAndRepair(*lib_, {});
  ASSERT_OK(verified);
  EXPECT_FALSE(verified->repair.has_value());
  EXPECT_EQ(DamagedObjects(verified->result.problems).size(), 2u);
  EXPECT_NE(ReadFile(Object(kA)), kA);
}

TEST_F(VerifyAndRepairTest, ARepairWithNoLegacyRootOrAnotherReaderIsNotStarted) {
  VerifyAndRepairOptions options;
  options.repair = true;
  auto no_root = VerifyAndRepair(*lib_, options);
  EXPECT_EQ(no_root.status().code(), absl::StatusCode::kFailedPrecondition) << no_root.status();
  EXPECT_THAT(std::string(no_root.status().message()), HasSubstr("repair not started"));
  // Another verify has the library open: a repair must not write under it.
  auto other = ContentLibrary::OpenExisting(PosixFileSystem(), dir_ / "content");
  ASSERT_OK(other);
  options.legacy_root = dir_ / "spare";
  auto busy = VerifyAndRepair(*lib_, options);
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kUnavailable) << busy.status();
  EXPECT_THAT(std::string(busy.status().message()), HasSubstr("repair not started"));
  EXPECT_NE(ReadFile(Object(kA)), kA);
  EXPECT_NE(ReadFile(Object(kB)), kB);
}

TEST_F(VerifyAndRepairTest, BrokenReferencesAloneGetARepairReportOfNothingDamaged) {
  // The objects whole again; a DataLib record gone instead.
  dpr::testing::WriteFile(Object(kA), kA);
  dpr::testing::WriteFile(Object(kB), kB);
  fs::remove(dir_ / "content/SCCMContentLib/DataLib/ABC00001.1/a.bin.INI");
  VerifyAndRepairOptions options;
  options.repair = true;  // and no legacy root: none is needed
  auto verified = VerifyAndRepair(*lib_, options);
  ASSERT_OK(verified);
  EXPECT_FALSE(verified->result.ok());
  ASSERT_TRUE(verified->repair.has_value());
  EXPECT_EQ(verified->repair->damaged, 0u);
}

TEST_F(VerifyAndRepairTest, ACallerThatLeftStopsTheCheck) {
  VerifyAndRepairOptions options;
  options.repair = true;
  options.legacy_root = dir_ / "spare";
  options.stop = [] { return true; };
  auto verified = VerifyAndRepair(*lib_, options);
  EXPECT_EQ(verified.status().code(), absl::StatusCode::kCancelled) << verified.status();
  EXPECT_THAT(std::string(verified.status().message()), HasSubstr("check stopped"));
  EXPECT_NE(ReadFile(Object(kA)), kA);
}

}  // namespace
}  // namespace dpr::importer
