// The CMTrace line checked field by field against a fixed instant and time
// zone, then the file sink's appending and roll-over to ".lo_".
#include "common/log/cmtrace_sink.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/logger.h"
#include "tests/support/test_support.h"

namespace dpr {
namespace {

using ::testing::HasSubstr;

// 2026-11-25 13:04:05.678 UTC
spdlog::log_clock::time_point FixedTime() {
  return spdlog::log_clock::time_point(std::chrono::milliseconds(1795611845678LL));
}

spdlog::details::log_msg Msg(spdlog::level::level_enum level, std::string_view text,
                             spdlog::source_loc loc = {}) {
  spdlog::details::log_msg msg(FixedTime(), loc, "SMS_DISTRIBUTION_MANAGER", level,
                               spdlog::string_view_t(text.data(), text.size()));
  msg.thread_id = 4242;
  return msg;
}

// Splits a line into its message and its attributes, as CMTrace does.
struct Parsed {
  std::string text;
  std::map<std::string, std::string> attrs;
  bool ok = false;
};

Parsed Parse(const std::string& line) {
  Parsed p;
  constexpr std::string_view kOpen = "<![LOG[", kClose = "]LOG]!><", kEnd = ">\r\n";
  if (line.rfind(kOpen, 0) != 0 || line.size() < kEnd.size() ||
      line.compare(line.size() - kEnd.size(), kEnd.size(), kEnd) != 0) {
    return p;
  }
  const size_t close = line.find(kClose);
  if (close == std::string::npos) return p;
  p.text = line.substr(kOpen.size(), close - kOpen.size());
  // name="value" pairs, separated by single spaces.
  std::string_view attrs(line);
  attrs = attrs.substr(close + kClose.size());
  attrs.remove_suffix(kEnd.size());
  while (!attrs.empty()) {
    const size_t eq = attrs.find("=\"");
    if (eq == std::string_view::npos) return p;
    const size_t end = attrs.find('"', eq + 2);
    if (end == std::string_view::npos) return p;
    p.attrs[std::string(attrs.substr(0, eq))] = std::string(attrs.substr(eq + 2, end - eq - 2));
    attrs.remove_prefix(end + 1);
    if (!attrs.empty() && attrs.front() == ' ') attrs.remove_prefix(1);
  }
  p.ok = true;
  return p;
}

TEST(CmtraceSinkTest, InformationalLineFieldByField) {
  const std::string line = FormatCmtraceLine(
      Msg(spdlog::level::info, "Processing package ABC00001", {"/src/distmgr/worker.cc", 77, "f"}),
      /*utc_offset_minutes=*/0);
  Parsed p = Parse(line);
  ASSERT_TRUE(p.ok) << line;
  EXPECT_EQ(p.text, "Processing package ABC00001");
  EXPECT_EQ(p.attrs["time"], "13:04:05.678+0");
  EXPECT_EQ(p.attrs["date"], "11-25-2026");
  EXPECT_EQ(p.attrs["component"], "SMS_DISTRIBUTION_MANAGER");
  EXPECT_EQ(p.attrs["context"], "");
  EXPECT_EQ(p.attrs["type"], "1");
  EXPECT_EQ(p.attrs["thread"], "4242");
  EXPECT_EQ(p.attrs["file"], "worker.cc:77");
  // Attribute order as the real components write it.
  size_t last = 0;
  for (const char* name :
       {"<time=", " date=", " component=", " context=", " type=", " thread=", " file="}) {
    const size_t at = line.find(name);
    ASSERT_NE(at, std::string::npos) << name;
    EXPECT_GT(at, last) << name;
    last = at;
  }
}

TEST(CmtraceSinkTest, BiasIsMinutesToAddToLocalTimeToGetUtc) {
  // UTC-5 (Eastern): local time 08:04, bias +300.
  Parsed west = Parse(FormatCmtraceLine(Msg(spdlog::level::info, "x"), -300));
  EXPECT_EQ(west.attrs["time"], "08:04:05.678+300");
  EXPECT_EQ(west.attrs["date"], "11-25-2026");
  // UTC+13 crosses midnight: local 02:04 on the 26th, bias -780.
  Parsed east = Parse(FormatCmtraceLine(Msg(spdlog::level::info, "x"), 780));
  EXPECT_EQ(east.attrs["time"], "02:04:05.678-780");
  EXPECT_EQ(east.attrs["date"], "11-26-2026");
}

TEST(CmtraceSinkTest, SeverityMapsToType) {
  EXPECT_EQ(Parse(FormatCmtraceLine(Msg(spdlog::level::debug, "x"), 0)).attrs["type"], "1");
  EXPECT_EQ(Parse(FormatCmtraceLine(Msg(spdlog::level::warn, "x"), 0)).attrs["type"], "2");
  EXPECT_EQ(Parse(FormatCmtraceLine(Msg(spdlog::level::err, "x"), 0)).attrs["type"], "3");
  EXPECT_EQ(Parse(FormatCmtraceLine(Msg(spdlog::level::critical, "x"), 0)).attrs["type"], "3");
}

TEST(CmtraceSinkTest, MessageCannotCloseTheRecordEarly) {
  Parsed p = Parse(FormatCmtraceLine(Msg(spdlog::level::info, "a]LOG]!>b \"q\""), 0));
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.text.find("]LOG]!>"), std::string::npos);
  EXPECT_THAT(p.text, HasSubstr("\"q\""));
  EXPECT_EQ(p.attrs["file"], "");  // no source location given
}

TEST(CmtraceSinkTest, FileSinkAppendsAndRollsOver) {
  dpr::testing::TempDir dir;
  const std::string path = dir / "distmgr.log";
  auto sink = CmtraceFileSink::Open(path, /*max_bytes=*/600);
  ASSERT_TRUE(sink.ok()) << sink.status();
  spdlog::logger logger("SMS_DISTRIBUTION_MANAGER", *sink);
  for (int i = 0; i < 6; ++i) logger.info("line {}", i);
  const std::string current = dpr::testing::ReadFile(path);
  const std::string old = dpr::testing::ReadFile(dir / "distmgr.lo_");
  EXPECT_FALSE(old.empty());
  EXPECT_LE(current.size(), 600u);
  EXPECT_THAT(current, HasSubstr("line 5"));
  // Every record made it to one of the two files, each a full line.
  for (int i = 0; i < 6; ++i) {
    const std::string needle = "<![LOG[line " + std::to_string(i) + "]LOG]!>";
    EXPECT_TRUE(current.find(needle) != std::string::npos || old.find(needle) != std::string::npos)
        << i;
  }
}

TEST(CmtraceSinkTest, OpenFailureNamesThePath) {
  auto sink = CmtraceFileSink::Open("/nonexistent-dir/distmgr.log");
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(std::string(sink.status().message()), HasSubstr("/nonexistent-dir/distmgr.log"));
}

}  // namespace
}  // namespace dpr
