// NAL path parse/format: both forms of SITE_DATABASE.md round-trip, and
// malformed ones are refused with the offending part named.
#include "common/nal/nal_path.h"

#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace dpr {
namespace {

using ::dpr::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kSiteSystem[] =
    R"(["Display=\\DP01.CONTOSO.COM\"]MSWNET:["SMS_SITE=S07"]\\DP01.CONTOSO.COM\)";
constexpr char kShare[] = R"(MSWNET:["SMS_SITE=S07"]\\DP01.CONTOSO.COM\SMSPKGD$\ABC00001\)";

TEST(NalPathTest, ParsesSiteSystemForm) {
  auto nal = ParseNalPath(kSiteSystem);
  ASSERT_OK(nal);
  EXPECT_EQ(nal->display, R"(\\DP01.CONTOSO.COM\)");
  EXPECT_EQ(nal->protocol, "MSWNET");
  EXPECT_EQ(nal->site_code, "S07");
  EXPECT_EQ(nal->server, "DP01.CONTOSO.COM");
  EXPECT_EQ(nal->share, "");
  EXPECT_EQ(FormatNalPath(*nal), kSiteSystem);
  EXPECT_EQ(SiteSystemNal("DP01.CONTOSO.COM", "S07"), *nal);
}

TEST(NalPathTest, ParsesShareForm) {
  auto nal = ParseNalPath(kShare);
  ASSERT_OK(nal);
  EXPECT_EQ(nal->display, "");
  EXPECT_EQ(nal->server, "DP01.CONTOSO.COM");
  EXPECT_EQ(nal->share, R"(SMSPKGD$\ABC00001\)");
  EXPECT_EQ(FormatNalPath(*nal), kShare);
  EXPECT_EQ(FormatNalPath(ShareNal("DP01.CONTOSO.COM", "S07", R"(SMSPKGD$\ABC00001)")), kShare);
}

TEST(NalPathTest, RefusesMalformed) {
  const char* bad[] = {
      "",
      R"(MSWNET:["SMS_SITE=S07"]\\\)",                       // empty server
      R"(MSWNET:["SMS_SITE=S0"]\\DP01\)",                    // short site code
      R"(MSWNET:["SMS_SITE=S07"\\DP01\)",                    // unclosed
      R"(MSWNET:["SMS_SITE=S07"]DP01\)",                     // no \\ before server
      R"(MSWNET:["SMS_SITE=S07"]\\DP01)",                    // server not ended
      R"(MSWNET:["SMS_SITE=S07"]\\DP01\SMSPKGD$)",           // share not ended
      R"(MSWNET:["SMS_SITE=S07"]\\DP01\..\x\)",              // '..' segment
      R"(MSWNET:["SMS_SITE=S07"]\\DP01\a\\b\)",              // empty segment
      R"(["Display=\\DP01\MSWNET:["SMS_SITE=S07"]\\DP01\)",  // display unclosed... then bad
      R"(:["SMS_SITE=S07"]\\DP01\)",                         // no protocol
      R"(MSWNET:["SMS_SITE=S07"]\\DP 01\)",                  // space in server
  };
  for (const char* text : bad) {
    EXPECT_THAT(ParseNalPath(text), StatusIs(absl::StatusCode::kInvalidArgument)) << text;
  }
  EXPECT_THAT(ParseNalPath(R"(MSWNET:["SMS_SITE=S0"]\\DP01\)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("site code 'S0'")));
}

TEST(NalPathTest, ServerComparisonIgnoresCase) {
  EXPECT_TRUE(SameServer("dp01.contoso.com", "DP01.CONTOSO.COM"));
  EXPECT_FALSE(SameServer("dp01.contoso.com", "dp02.contoso.com"));
  EXPECT_TRUE(IsValidSiteCode("S07"));
  EXPECT_FALSE(IsValidSiteCode("S07X"));
  EXPECT_FALSE(IsValidSiteCode("S-7"));
}

}  // namespace
}  // namespace dpr
