// TOML config: typed values, and errors that name file:line for a bad type,
// an unknown key and a syntax error.
#include "common/config/toml_config.h"

#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace dpr {
namespace {

using ::dpr::testing::StatusIs;
using ::testing::HasSubstr;

TEST(TomlConfigTest, ReadsTypedValuesAndDottedKeys) {
  auto cfg = TomlConfig::Parse(
      "listen = \"127.0.0.1:0\"\n[tls]\nreload_seconds = 5\n"
      "verbose = true\n",
      "ctl.toml");
  ASSERT_OK(cfg);
  std::string listen;
  int64_t reload = 60;
  bool verbose = false;
  std::string absent = "default";
  ASSERT_OK(cfg->GetString("listen", &listen));
  ASSERT_OK(cfg->GetInt("tls.reload_seconds", &reload));
  ASSERT_OK(cfg->GetBool("tls.verbose", &verbose));
  ASSERT_OK(cfg->GetString("data_dir", &absent));
  EXPECT_EQ(listen, "127.0.0.1:0");
  EXPECT_EQ(reload, 5);
  EXPECT_TRUE(verbose);
  EXPECT_EQ(absent, "default");
  EXPECT_OK(cfg->CheckNoUnknownKeys());
}

TEST(TomlConfigTest, WrongTypeNamesFileAndLine) {
  auto cfg = TomlConfig::Parse("\n\nlisten = 42\n", "ctl.toml");
  ASSERT_OK(cfg);
  std::string listen;
  EXPECT_THAT(cfg->GetString("listen", &listen),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ctl.toml:3: key 'listen'")));
}

TEST(TomlConfigTest, UnknownKeyNamesFileAndLine) {
  auto cfg = TomlConfig::Parse("listen = \"x\"\nlisten_adress = \"y\"\n", "ctl.toml");
  ASSERT_OK(cfg);
  std::string listen;
  ASSERT_OK(cfg->GetString("listen", &listen));
  EXPECT_THAT(cfg->CheckNoUnknownKeys(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("ctl.toml:2: unknown key 'listen_adress'")));
}

TEST(TomlConfigTest, SyntaxErrorNamesLineAndColumn) {
  EXPECT_THAT(TomlConfig::Parse("a = 1\nb = \"unterminated\n", "ctl.toml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ctl.toml:2:")));
  EXPECT_THAT(TomlConfig::Load("/nonexistent/ctl.toml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/ctl.toml")));
}

}  // namespace
}  // namespace dpr
