// dp-controller's settings come in layers: defaults < TOML file <
// environment (DPR_CONTROLLER_*) < flags (docs/CONFIG.md).
#include "controller/controller_config.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/test_support.h"

namespace dpr::controller {
namespace {

using ::testing::HasSubstr;

struct Env {
  Env(const char* name, const char* value) : name(name) { ::setenv(name, value, 1); }
  ~Env() { ::unsetenv(name); }
  const char* name;
};

absl::StatusOr<ControllerConfig> Resolve(const std::string& command_line) {
  CLI::App app;
  ControllerFlags flags;
  AddControllerFlags(app, &flags);
  app.parse(command_line, false);
  return ResolveControllerConfig(app, flags);
}

TEST(ControllerConfigTest, DefaultsFileEnvironmentFlagsInThatOrder) {
  testing::TempDir dir;
  testing::WriteFile(dir / "controller.toml",
                     "data_dir = \"data\"\n[jobs]\nmax_running = 7\nconvert_attempts = 4\n"
                     "[distmgr]\ninbox_scan_seconds = 9\n");
  Env max_jobs("DPR_CONTROLLER_MAX_JOBS", "12");
  Env attempts("DPR_CONTROLLER_CONVERT_ATTEMPTS", "5");
  auto c = Resolve("--config " + (dir / "controller.toml") + " --convert-attempts 6");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->inbox_scan_seconds, 9);          // file over default
  EXPECT_EQ(c->max_jobs, 12);                   // environment over file
  EXPECT_EQ(c->convert_attempts, 6);            // flag over environment
  EXPECT_EQ(c->agent_keepalive_seconds, 20);    // default
  EXPECT_EQ(c->daemon.listen, "0.0.0.0:9443");  // default
  EXPECT_EQ(c->daemon.data_dir, dir / "data");  // relative to the file
}

TEST(ControllerConfigTest, SharedSettingsComeFromTheEnvironmentToo) {
  testing::TempDir dir;
  Env data("DPR_CONTROLLER_DATA_DIR", (dir / "state").c_str());
  Env listen("DPR_CONTROLLER_LISTEN", "127.0.0.1:0");
  auto c = Resolve("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->daemon.data_dir, dir / "state");
  EXPECT_EQ(c->daemon.listen, "127.0.0.1:0");
}

TEST(ControllerConfigTest, BadValuesAreRefusedWithTheirName) {
  testing::TempDir dir;
  Env data("DPR_CONTROLLER_DATA_DIR", (dir / "state").c_str());
  {
    Env bad("DPR_CONTROLLER_MAX_JOBS", "0");
    auto c = Resolve("");
    EXPECT_THAT(c.status().message(), HasSubstr("--max-jobs is 0: give 1 to 1000"));
  }
  {
    Env bad("DPR_CONTROLLER_MAX_JOBS", "lots");
    EXPECT_THROW(Resolve(""), CLI::ParseError);
  }
  testing::WriteFile(dir / "c.toml", "[jobs]\nmax_runing = 3\n");
  auto c = Resolve("--config " + (dir / "c.toml"));
  EXPECT_THAT(c.status().message(), HasSubstr("c.toml:2"));
}

}  // namespace
}  // namespace dpr::controller
