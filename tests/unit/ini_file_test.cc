// INI parsing and writing as the content library's files need: CRLF on
// write, tolerant read, case-insensitive lookup, and errors naming lines.
#include "common/ini/ini_file.h"

#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace dpr {
namespace {

using ::dpr::testing::StatusIs;
using ::testing::HasSubstr;

TEST(IniFileTest, WritesCrlfInInsertionOrder) {
  IniFile ini;
  ASSERT_OK(ini.Set("File", "Size", "42"));
  ASSERT_OK(ini.Set("File", "Hash", "AB"));
  ASSERT_OK(ini.Set("Users", "ABC00001.1", ""));
  EXPECT_EQ(ini.Serialize(), "[File]\r\nSize=42\r\nHash=AB\r\n[Users]\r\nABC00001.1=\r\n");
}

TEST(IniFileTest, ParsesWhatItWrites) {
  IniFile ini;
  ASSERT_OK(ini.Set("Info", "Version", "3"));
  ASSERT_OK(ini.Set("Packages", "ABC00001.3", ""));
  auto back = IniFile::Parse(ini.Serialize(), "x.INI");
  ASSERT_OK(back);
  EXPECT_EQ(back->Serialize(), ini.Serialize());
}

TEST(IniFileTest, ToleratesLfBomCommentsAndBlanks) {
  auto ini = IniFile::Parse("\xEF\xBB\xBF; comment\n\n[Info]\n  Version = 2 \n# x\n[info]\nHash=\n",
                            "a.INI");
  ASSERT_OK(ini);
  EXPECT_EQ(ini->Get("INFO", "version"), "2");
  // A repeated section continues the first one.
  ASSERT_EQ(ini->sections().size(), 1u);
  EXPECT_EQ(ini->Get("Info", "Hash"), "");
  EXPECT_EQ(ini->Get("Info", "Missing"), std::nullopt);
  EXPECT_EQ(ini->Get("Nope", "Version"), std::nullopt);
}

TEST(IniFileTest, ValueMayContainEquals) {
  auto ini = IniFile::Parse("[A]\r\nk=a=b\r\n", "a.INI");
  ASSERT_OK(ini);
  EXPECT_EQ(ini->Get("A", "k"), "a=b");
}

TEST(IniFileTest, ErrorsNameFileAndLine) {
  EXPECT_THAT(IniFile::Parse("[A]\nk=v\njunk\n", "x.INI"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.INI:3:")));
  EXPECT_THAT(IniFile::Parse("k=v\n", "x.INI"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("before any section")));
  EXPECT_THAT(IniFile::Parse("[A\n", "x.INI"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x.INI:1:")));
  EXPECT_THAT(IniFile::Parse("[A]\n=v\n", "x.INI"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty key")));
  EXPECT_THAT(IniFile::Parse(std::string("[A]\nk=v\0w\n", 11), "x.INI"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  // Found by ini_fuzz: a blank section name parsed but could not be read
  // back once written.
  EXPECT_THAT(IniFile::Parse("[     ]\nk=v\n", "x.INI"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty section name")));
}

TEST(IniFileTest, RefusesUnwritableKeysAndValues) {
  IniFile ini;
  EXPECT_THAT(ini.Set("A", "k", "line\r\nbreak"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ini.Set("A", "k=x", "v"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ini.Set("A", "[k", "v"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ini.Set("A]", "k", "v"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ini.Set("A", " k", "v"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(ini.sections().empty());
}

TEST(IniFileTest, SetReplacesAndRemoveDeletes) {
  IniFile ini;
  ASSERT_OK(ini.Set("Users", "A.1", ""));
  ASSERT_OK(ini.Set("Users", "B.1", ""));
  ASSERT_OK(ini.Set("users", "a.1", "x"));
  EXPECT_EQ(ini.FindSection("Users")->entries.size(), 2u);
  EXPECT_TRUE(ini.Remove("Users", "A.1"));
  EXPECT_FALSE(ini.Remove("Users", "A.1"));
  EXPECT_EQ(ini.Serialize(), "[Users]\r\nB.1=\r\n");
}

}  // namespace
}  // namespace dpr
