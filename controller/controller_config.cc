#include "controller/controller_config.h"

#include "common/status/status_macros.h"

namespace dpr::controller {

void AddControllerFlags(CLI::App& app, ControllerFlags* out) {
  AddDaemonFlags(app, &out->flags.daemon, &out->config_path);
}

absl::StatusOr<ControllerConfig> ResolveControllerConfig(const CLI::App& app,
                                                         const ControllerFlags& given) {
  ControllerConfig config;
  config.daemon.listen = kDefaultControllerListen;
  if (!given.config_path.empty()) {
    ASSIGN_OR_RETURN(TomlConfig file, TomlConfig::Load(given.config_path));
    RETURN_IF_ERROR(ReadDaemonKeys(file, &config.daemon));
    RETURN_IF_ERROR(file.CheckNoUnknownKeys());
  }
  ApplyGivenFlags(app, given.flags.daemon, &config.daemon);
  if (config.daemon.data_dir.empty()) {
    return absl::InvalidArgumentError("no data folder: give --data-dir or data_dir in the config");
  }
  config.daemon.data_dir = Absolute(config.daemon.data_dir);
  return config;
}

}  // namespace dpr::controller
