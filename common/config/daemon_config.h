// Settings both daemons share, layered defaults < TOML file (--config) <
// environment (<PREFIX><FLAG>, e.g. DPR_AGENT_LISTEN) < command-line flags.
// A daemon adds its own keys the same way. docs/CONFIG.md lists them all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "common/config/toml_config.h"

namespace dpr {

struct DaemonConfig {
  std::string data_dir;
  std::string listen;
  std::string cert;
  std::string key;
  std::string ca;
  std::string log_level = "info";
  int64_t tls_reload_seconds = 60;
  std::string metrics_listen;  // "": no metrics endpoint
};

// The keys (config-file names) whose values differ between `a` and `b`, for
// SIGHUP: a daemon applies what it can at run time and names the rest as
// taking effect at the next restart.
std::vector<std::string> ChangedDaemonKeys(const DaemonConfig& a, const DaemonConfig& b);

// Registers --config and the shared flags on `app`; values land in `flags`
// (kept apart from the resolved config so we can tell what was given).
void AddDaemonFlags(CLI::App& app, DaemonConfig* flags, std::string* config_path);

// Lets every long option of `app` (but --help) also come from the
// environment: --max-jobs reads <prefix>MAX_JOBS when not given. Call after
// all options are added; a flag on the command line wins over the variable.
void AddEnvironmentNames(CLI::App& app, const std::string& prefix);

// Reads the shared keys from `file` into `config`.
absl::Status ReadDaemonKeys(TomlConfig& file, DaemonConfig* config);

// Copies into `config` every shared flag given on the command line or in
// the environment.
void ApplyGivenFlags(const CLI::App& app, const DaemonConfig& flags, DaemonConfig* config);

// Relative paths in a config file are relative to the file's folder, so a
// site directory can be moved as a whole.
// `path` made absolute against the working directory (logs and listen.addr
// then name the real place).
std::string Absolute(const std::string& path);

std::string ResolveRelativeTo(const std::string& config_path, const std::string& path);

}  // namespace dpr
