#include "controller/cli/cli_context.h"

#include "common/config/toml_config.h"
#include "common/grpc/tls_credentials.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"
#include "grpcpp/create_channel.h"

namespace dpr::cli {

void AddGlobalOptions(CLI::App& app, GlobalOptions* o) {
  app.add_option("--config", o->config_path, "TOML file with controller, cert, key, ca")
      ->envname("DPCTL_CONFIG");
  app.add_option("--controller", o->controller, "controller admin API, HOST:PORT")
      ->envname("DPCTL_CONTROLLER");
  app.add_option("--cert", o->cert, "admin certificate (PEM)")->envname("DPCTL_CERT");
  app.add_option("--key", o->key, "admin private key (PEM)")->envname("DPCTL_KEY");
  app.add_option("--ca", o->ca, "site CA certificate (PEM)")->envname("DPCTL_CA");
  app.add_option("--tls-server-name", o->tls_server_name,
                 "name the controller's certificate must carry (default: the dialled host)")
      ->envname("DPCTL_TLS_SERVER_NAME");
  app.add_option("-o,--output", o->output, "table or json")->envname("DPCTL_OUTPUT");
}

absl::Status ApplyConfigFile(const CLI::App& app, GlobalOptions* o) {
  if (o->config_path.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(TomlConfig file, TomlConfig::Load(o->config_path));
  struct Key {
    const char* flag;
    const char* key;
    std::string* field;
  };
  const Key keys[] = {{"--controller", "controller", &o->controller},
                      {"--cert", "cert", &o->cert},
                      {"--key", "key", &o->key},
                      {"--ca", "ca", &o->ca},
                      {"--tls-server-name", "tls_server_name", &o->tls_server_name},
                      {"--output", "output", &o->output}};
  for (const Key& k : keys) {
    std::string value;
    RETURN_IF_ERROR(file.GetString(k.key, &value));
    if (app.count(k.flag) == 0 && file.Has(k.key)) *k.field = value;
  }
  return file.CheckNoUnknownKeys();
}

absl::StatusOr<OutputFormat> ParseOutput(const std::string& text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(
      fmt::format("unknown output format '{}' (use table or json)", text));
}

absl::StatusOr<std::unique_ptr<dpreassign::v1::AdminService::Stub>> ConnectToController(
    const GlobalOptions& o) {
  if (o.cert.empty() || o.key.empty() || o.ca.empty()) {
    return absl::InvalidArgumentError(
        "no admin certificate: give --cert, --key and --ca (or DPCTL_CERT, DPCTL_KEY, DPCTL_CA)");
  }
  ASSIGN_OR_RETURN(auto creds, MakeChannelCredentials({o.cert, o.key, o.ca, 60}));
  grpc::ChannelArguments args;
  if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  auto channel = grpc::CreateCustomChannel(o.controller, creds, args);
  return dpreassign::v1::AdminService::NewStub(channel);
}

}  // namespace dpr::cli
