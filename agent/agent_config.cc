#include "agent/agent_config.h"

#include "common/status/status_macros.h"

namespace dpr::agent {

void AddAgentFlags(CLI::App& app, AgentFlags* out) {
  AddDaemonFlags(app, &out->flags.daemon, &out->config_path);
  app.add_option("--content-root", out->flags.content_root,
                 "folder holding SCCMContentLib (the content library)");
  app.add_option("--legacy-root", out->flags.legacy_root,
                 "folder holding the legacy package shares (<root>/SMSPKGD$/<PkgID>/)");
  AddEnvironmentNames(app, "DPR_AGENT_");
}

absl::StatusOr<AgentConfig> ResolveAgentConfig(const CLI::App& app, const AgentFlags& given) {
  AgentConfig config;
  config.daemon.listen = kDefaultAgentListen;
  if (!given.config_path.empty()) {
    ASSIGN_OR_RETURN(TomlConfig file, TomlConfig::Load(given.config_path));
    RETURN_IF_ERROR(ReadDaemonKeys(file, &config.daemon));
    RETURN_IF_ERROR(file.GetString("content_root", &config.content_root));
    RETURN_IF_ERROR(file.GetString("legacy_root", &config.legacy_root));
    config.content_root = ResolveRelativeTo(given.config_path, config.content_root);
    config.legacy_root = ResolveRelativeTo(given.config_path, config.legacy_root);
    RETURN_IF_ERROR(file.CheckNoUnknownKeys());
  }
  ApplyGivenFlags(app, given.flags.daemon, &config.daemon);
  if (app.count("--content-root")) config.content_root = given.flags.content_root;
  if (app.count("--legacy-root")) config.legacy_root = given.flags.legacy_root;
  if (config.daemon.data_dir.empty()) {
    return absl::InvalidArgumentError("no data folder: give --data-dir or data_dir in the config");
  }
  if (config.content_root.empty()) {
    return absl::InvalidArgumentError(
        "no content root: give --content-root or content_root in the config");
  }
  config.daemon.data_dir = Absolute(config.daemon.data_dir);
  config.content_root = Absolute(config.content_root);
  config.legacy_root = Absolute(config.legacy_root);
  return config;
}

}  // namespace dpr::agent
