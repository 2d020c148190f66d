// The progress line of dp-agent convert, driven by hand-made events and a
// fake clock.
#include "agent/importer/progress_line.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dpr::importer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;
using Kind = ImportEvent::Kind;

class ProgressLineTest : public ::testing::Test {
 protected:
  ImportProgressLine Make(bool terminal, size_t packages) {
    return ImportProgressLine([this](const std::string& s) { out_.push_back(s); }, terminal,
                              packages, [this] { return now_; });
  }
  void Advance(std::chrono::milliseconds d) { now_ += d; }
  static ImportEvent Event(Kind kind, const std::string& content, uint64_t done, uint64_t total) {
    ImportEvent e{};
    e.kind = kind;
    e.package_id = content.substr(0, content.find('.'));
    e.content_id = content;
    e.bytes_done = done;
    e.bytes_total = total;
    return e;
  }

  std::vector<std::string> out_;
  ProgressLine::Clock::time_point now_{};
};

constexpr uint64_t kMiB = 1 << 20;

TEST_F(ProgressLineTest, PlainOutputWritesALineEveryTenSecondsAndOneAtTheEnd) {
  ImportProgressLine p = Make(/*terminal=*/false, 3);
  p.OnEvent(Event(Kind::kPackageStarted, "ABC00001.1", 0, 10 * kMiB));
  Advance(std::chrono::seconds(9));
  p.OnEvent(Event(Kind::kPackageProgress, "ABC00001.1", 4 * kMiB, 10 * kMiB));
  EXPECT_THAT(out_, IsEmpty());  // not yet due
  Advance(std::chrono::seconds(1));
  p.OnEvent(Event(Kind::kPackageProgress, "ABC00001.1", 5 * kMiB, 10 * kMiB));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0], "converted 0/3 packages, read 5.0 MiB (0.5 MiB/s), 10 s\n");

  p.OnEvent(Event(Kind::kPackageDone, "ABC00001.1", 10 * kMiB, 10 * kMiB));
  p.OnEvent(Event(Kind::kPackageFailed, "ABC00002.1", 0, 0));
  EXPECT_EQ(out_.size(), 1u);  // the next line is due only at 20 s
  p.Finish();
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1], "converted 1/3 packages, 1 failed, read 10.0 MiB (1.0 MiB/s), 10 s\n");
}

TEST_F(ProgressLineTest, CountsBytesReadOnceAndNotThoseOfPackagesDoneEarlier) {
  ImportProgressLine p = Make(/*terminal=*/false, 4);
  p.OnEvent(Event(Kind::kPackageStarted, "ABC00001.1", 0, 3 * kMiB));
  p.OnEvent(Event(Kind::kPackageStarted, "ABC00002.1", 0, 8 * kMiB));
  p.OnEvent(Event(Kind::kPackageProgress, "ABC00001.1", 2 * kMiB, 3 * kMiB));
  p.OnEvent(Event(Kind::kPackageProgress, "ABC00001.1", 3 * kMiB, 3 * kMiB));
  p.OnEvent(Event(Kind::kPackageProgress, "ABC00002.1", 1 * kMiB, 8 * kMiB));
  EXPECT_THAT(p.Text(), HasSubstr("read 4.0 MiB"));
  p.OnEvent(Event(Kind::kPackageDone, "ABC00001.1", 3 * kMiB, 3 * kMiB));
  EXPECT_THAT(p.Text(), HasSubstr("converted 1/4 packages, read 4.0 MiB"));
  // Committed by an earlier run: done, but this run read nothing of it.
  ImportEvent earlier = Event(Kind::kPackageDone, "ABC00003.1", 50 * kMiB, 50 * kMiB);
  earlier.already_done = true;
  p.OnEvent(earlier);
  EXPECT_THAT(p.Text(), HasSubstr("converted 2/4 packages, read 4.0 MiB"));
  // A package that fails part way counts what it read.
  p.OnEvent(Event(Kind::kPackageFailed, "ABC00002.1", 1 * kMiB, 8 * kMiB));
  EXPECT_THAT(p.Text(), HasSubstr("converted 2/4 packages, 1 failed, read 4.0 MiB"));
}

TEST_F(ProgressLineTest, TerminalLineIsRedrawnInPlaceAndClearedForOtherLines) {
  ImportProgressLine p = Make(/*terminal=*/true, 2);
  p.OnEvent(Event(Kind::kPackageStarted, "ABC00001.1", 0, 2 * kMiB));
  EXPECT_THAT(out_, IsEmpty());
  Advance(std::chrono::milliseconds(500));
  p.OnEvent(Event(Kind::kPackageProgress, "ABC00001.1", kMiB, 2 * kMiB));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_THAT(out_[0], StartsWith("\rconverted 0/2 packages, read 1.0 MiB"));
  EXPECT_THAT(out_[0], ::testing::EndsWith("\x1b[K"));

  p.Print("failed: ABC00002: no such folder");
  EXPECT_THAT(std::vector<std::string>(out_.begin() + 1, out_.end()),
              ElementsAre("\r\x1b[K", "failed: ABC00002: no such folder\n"));
  out_.clear();
  p.Print("another line");  // nothing drawn to clear
  EXPECT_THAT(out_, ElementsAre("another line\n"));

  out_.clear();
  Advance(std::chrono::milliseconds(500));
  p.OnEvent(Event(Kind::kPackageDone, "ABC00001.1", 2 * kMiB, 2 * kMiB));
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_THAT(out_[0], StartsWith("\rconverted 1/2 packages, read 2.0 MiB"));
  p.Finish();  // the summary follows on a clean line
  EXPECT_EQ(out_.back(), "\r\x1b[K");
}

TEST_F(ProgressLineTest, VerifyLineSaysContentsThenObjectsAndBytes) {
  VerifyProgressLine p([this](const std::string& s) { out_.push_back(s); }, /*terminal=*/false,
                       [this] { return now_; });
  contentlib::VerifyProgress v;
  v.contents_total = 468;
  v.contents_done = 64;
  p.OnProgress(v);
  EXPECT_EQ(p.Text(), "verified 64/468 contents, 0 s");
  v.contents_done = 468;
  v.objects_expected = 13535;
  v.objects_done = 1024;
  v.bytes_expected = 1520 * kMiB;
  v.bytes_hashed = 100 * kMiB;
  Advance(std::chrono::seconds(10));
  p.OnProgress(v);
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0],
            "verified 468/468 contents, 1024/13535 objects, re-hashed 100.0/1520.0 MiB "
            "(10.0 MiB/s), 10 s\n");
}

// With a repair, the line says which phase it is in: the search of the
// legacy folders has its own counts, and the second check says so.
TEST_F(ProgressLineTest, VerifyLineNamesTheRepairAndTheCheckAfterIt) {
  contentlib::VerifyProgress v;
  v.phase = VerifyPhase::kRepair;
  v.objects_damaged = 3;
  v.objects_repaired = 1;
  v.legacy_files_seen = 12034;
  v.legacy_files_hashed = 14;
  v.legacy_bytes_hashed = 35 * kMiB;
  v.contents_total = 468;  // the check's counts are not the search's
  EXPECT_EQ(VerifyProgressText(v, 7),
            "repairing: 1/3 objects put back; looked at 12034 legacy files, hashed 14 "
            "(35.0 MiB), 7 s");
  contentlib::VerifyProgress again;
  again.phase = VerifyPhase::kRecheck;
  again.contents_total = 468;
  again.contents_done = 64;
  EXPECT_EQ(VerifyProgressText(again, 9), "checking again: verified 64/468 contents, 9 s");
}

}  // namespace
}  // namespace dpr::importer
