#include "common/config/daemon_config.h"

#include <cctype>
#include <filesystem>

#include "common/status/status_macros.h"

namespace dpr {

void AddDaemonFlags(CLI::App& app, DaemonConfig* flags, std::string* config_path) {
  app.add_option("--config", *config_path, "TOML config file (flags override it)");
  app.add_option("--data-dir", flags->data_dir, "state, logs and listen.addr go here");
  app.add_option("--listen", flags->listen, "HOST:PORT to serve on (port 0: any free port)");
  app.add_option("--cert", flags->cert, "this daemon's certificate (PEM)");
  app.add_option("--key", flags->key, "this daemon's private key (PEM)");
  app.add_option("--ca", flags->ca, "the site CA certificate (PEM)");
  app.add_option("--log-level", flags->log_level, "trace, debug (verbose), info, warn, error");
  app.add_option("--tls-reload-seconds", flags->tls_reload_seconds,
                 "how often replaced certificate files are picked up");
  app.add_option("--metrics-listen", flags->metrics_listen,
                 "HOST:PORT for the Prometheus endpoint (plain HTTP; default: off)");
}

void AddEnvironmentNames(CLI::App& app, const std::string& prefix) {
  for (CLI::Option* opt : app.get_options()) {
    const auto& names = opt->get_lnames();
    if (names.empty() || names.front() == "help") continue;
    std::string env = prefix;
    for (char c : names.front()) {
      env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    opt->envname(env);
  }
}

absl::Status ReadDaemonKeys(TomlConfig& file, DaemonConfig* config) {
  RETURN_IF_ERROR(file.GetString("data_dir", &config->data_dir));
  RETURN_IF_ERROR(file.GetString("listen", &config->listen));
  RETURN_IF_ERROR(file.GetString("tls.cert", &config->cert));
  RETURN_IF_ERROR(file.GetString("tls.key", &config->key));
  RETURN_IF_ERROR(file.GetString("tls.ca", &config->ca));
  RETURN_IF_ERROR(file.GetInt("tls.reload_seconds", &config->tls_reload_seconds));
  RETURN_IF_ERROR(file.GetString("log_level", &config->log_level));
  RETURN_IF_ERROR(file.GetString("metrics.listen", &config->metrics_listen));
  for (std::string* p : {&config->data_dir, &config->cert, &config->key, &config->ca}) {
    *p = ResolveRelativeTo(file.name(), *p);
  }
  return absl::OkStatus();
}

void ApplyGivenFlags(const CLI::App& app, const DaemonConfig& flags, DaemonConfig* config) {
  auto given = [&](const char* name) { return app.count(name) > 0; };
  if (given("--data-dir")) config->data_dir = flags.data_dir;
  if (given("--listen")) config->listen = flags.listen;
  if (given("--cert")) config->cert = flags.cert;
  if (given("--key")) config->key = flags.key;
  if (given("--ca")) config->ca = flags.ca;
  if (given("--log-level")) config->log_level = flags.log_level;
  if (given("--tls-reload-seconds")) config->tls_reload_seconds = flags.tls_reload_seconds;
  if (given("--metrics-listen")) config->metrics_listen = flags.metrics_listen;
}

std::vector<std::string> ChangedDaemonKeys(const DaemonConfig& a, const DaemonConfig& b) {
  std::vector<std::string> out;
  auto check = [&](bool differs, const char* key) {
    if (differs) out.push_back(key);
  };
  check(a.data_dir != b.data_dir, "data_dir");
  check(a.listen != b.listen, "listen");
  check(a.cert != b.cert, "tls.cert");
  check(a.key != b.key, "tls.key");
  check(a.ca != b.ca, "tls.ca");
  check(a.tls_reload_seconds != b.tls_reload_seconds, "tls.reload_seconds");
  check(a.log_level != b.log_level, "log_level");
  check(a.metrics_listen != b.metrics_listen, "metrics.listen");
  return out;
}

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string ResolveRelativeTo(const std::string& config_path, const std::string& path) {
  if (path.empty() || path.front() == '/') return path;
  auto slash = config_path.find_last_of('/');
  if (slash == std::string::npos) return path;
  return config_path.substr(0, slash + 1) + path;
}

}  // namespace dpr
