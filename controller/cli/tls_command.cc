// dpctl tls ca create / dpctl tls cert create: the site's PKI, in the spirit
// of `nomad tls` and `consul tls`.
#include <cstdio>

#include "common/fs/durable_file.h"
#include "common/pki/pki.h"
#include "controller/cli/commands.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace dpr::cli {
namespace {

struct CaArgs {
  std::string dir = ".";
  std::string name = "dpreassign site CA";
  int64_t days = 3650;
};

struct CertArgs {
  std::string dir = ".";
  std::string role;
  std::string name;
  std::vector<std::string> ips;
  std::vector<std::string> dns;
  int64_t days = 365;
};

struct SignArgs {
  std::string dir = ".";
  std::string csr;
  std::string out;
  std::string role;
  std::string name;
  std::vector<std::string> ips;
  std::vector<std::string> dns;
  int64_t days = 365;
};

int RunCaCreate(const GlobalOptions& global, const CaArgs& args) {
  auto format = ParseOutput(global.output);
  if (!format.ok()) return ReportError(format.status());
  auto st = CreateCaFiles(args.dir, {.common_name = args.name, .valid_days = args.days});
  if (!st.ok()) return ReportError(st);
  const std::string crt = args.dir + "/ca.crt", key = args.dir + "/ca.key";
  if (*format == OutputFormat::kJson) {
    std::printf("%s\n", nlohmann::json{{"cert", crt}, {"key", key}}.dump().c_str());
  } else {
    std::printf("created %s\ncreated %s (keep it private: it signs every site certificate)\n",
                crt.c_str(), key.c_str());
  }
  return kExitOk;
}

int RunCertCreate(const GlobalOptions& global, const CertArgs& args) {
  auto format = ParseOutput(global.output);
  if (!format.ok()) return ReportError(format.status());
  auto role = ParseRole(args.role);
  if (!role.ok()) return ReportError(role.status());
  CertOptions options{.role = *role,
                      .name = args.name,
                      .ip_addresses = args.ips,
                      .extra_dns = args.dns,
                      .valid_days = args.days};
  auto files = CreateCertFiles(args.dir, options);
  if (!files.ok()) return ReportError(files.status());
  if (*format == OutputFormat::kJson) {
    std::printf("%s\n", nlohmann::json{{"cert", files->cert_path},
                                       {"key", files->key_path},
                                       {"role", args.role},
                                       {"name", args.name}}
                            .dump()
                            .c_str());
  } else {
    std::printf("created %s (%s certificate for '%s')\ncreated %s\n", files->cert_path.c_str(),
                args.role.c_str(), args.name.c_str(), files->key_path.c_str());
  }
  return kExitOk;
}

// The key stays where the request was made (deploy/install-agent.sh and the
// Ansible role make it on the DP); only the request and the certificate
// travel.
int RunCertSign(const GlobalOptions& global, const SignArgs& args) {
  auto format = ParseOutput(global.output);
  if (!format.ok()) return ReportError(format.status());
  auto role = ParseRole(args.role);
  if (!role.ok()) return ReportError(role.status());
  KeyAndCert ca;
  auto ca_cert = ReadFileToString(args.dir + "/ca.crt", 1 << 20);
  if (!ca_cert.ok()) return ReportError(ca_cert.status());
  auto ca_key = ReadFileToString(args.dir + "/ca.key", 1 << 20);
  if (!ca_key.ok()) return ReportError(ca_key.status());
  ca.cert_pem = *ca_cert;
  ca.key_pem = *ca_key;
  auto csr = ReadFileToString(args.csr, 1 << 20);
  if (!csr.ok()) return ReportError(csr.status());
  auto cert = SignCertificateRequest(ca,
                                     {.role = *role,
                                      .name = args.name,
                                      .ip_addresses = args.ips,
                                      .extra_dns = args.dns,
                                      .valid_days = args.days},
                                     *csr);
  if (!cert.ok()) {
    return ReportError(absl::Status(
        cert.status().code(),
        fmt::format("request '{}': {}", args.csr, std::string(cert.status().message()))));
  }
  const std::string out = args.out.empty() ? args.dir + "/" + args.name + ".crt" : args.out;
  if (auto st = WriteFileDurably(out, *cert, {.mode = 0644}); !st.ok()) return ReportError(st);
  if (*format == OutputFormat::kJson) {
    std::printf(
        "%s\n",
        nlohmann::json{{"cert", out}, {"role", args.role}, {"name", args.name}}.dump().c_str());
  } else {
    std::printf("created %s (%s certificate for '%s', for the key of %s)\n", out.c_str(),
                args.role.c_str(), args.name.c_str(), args.csr.c_str());
  }
  return kExitOk;
}

}  // namespace

void AddTlsCommands(CLI::App& app, GlobalOptions* global, int* exit_code) {
  CLI::App* tls = app.add_subcommand("tls", "make the site CA and certificates");
  tls->require_subcommand(1);

  CLI::App* ca = tls->add_subcommand("ca", "the site CA")->require_subcommand(1);
  auto ca_args = std::make_shared<CaArgs>();
  CLI::App* ca_create = ca->add_subcommand("create", "create DIR/ca.crt and DIR/ca.key");
  ca_create->add_option("--dir", ca_args->dir, "output folder")->capture_default_str();
  ca_create->add_option("--common-name", ca_args->name, "CA subject name")->capture_default_str();
  ca_create->add_option("--days", ca_args->days, "validity in days")->capture_default_str();
  ca_create->callback([=] { *exit_code = RunCaCreate(*global, *ca_args); });

  CLI::App* cert =
      tls->add_subcommand("cert", "certificates signed by the site CA")->require_subcommand(1);
  auto cert_args = std::make_shared<CertArgs>();
  CLI::App* cert_create = cert->add_subcommand(
      "create", "create DIR/NAME.crt and DIR/NAME.key (mode 0600), signed by DIR/ca.*");
  cert_create->add_option("--dir", cert_args->dir, "folder holding ca.crt and ca.key")
      ->capture_default_str();
  cert_create->add_option("--role", cert_args->role, "agent, controller or admin")
      ->required()
      ->check(CLI::IsMember({"agent", "controller", "admin"}));
  cert_create
      ->add_option("--name", cert_args->name,
                   "agent: the DP server name; controller: the site server name; admin: the admin")
      ->required();
  cert_create->add_option("--ip", cert_args->ips,
                          "an IP address the holder is reached at (repeatable)");
  cert_create->add_option("--dns", cert_args->dns, "a further DNS name (repeatable)");
  cert_create->add_option("--days", cert_args->days, "validity in days")->capture_default_str();
  cert_create->callback([=] { *exit_code = RunCertCreate(*global, *cert_args); });

  auto sign_args = std::make_shared<SignArgs>();
  CLI::App* sign = cert->add_subcommand(
      "sign",
      "sign a certificate request made where the key lives (the key never comes here): writes "
      "OUT (default DIR/NAME.crt)");
  sign->add_option("--dir", sign_args->dir, "folder holding ca.crt and ca.key")
      ->capture_default_str();
  sign->add_option("--csr", sign_args->csr, "the PEM certificate request")->required();
  sign->add_option("--out", sign_args->out, "where the certificate goes");
  sign->add_option("--role", sign_args->role, "agent, controller or admin")
      ->required()
      ->check(CLI::IsMember({"agent", "controller", "admin"}));
  sign->add_option("--name", sign_args->name, "as for 'cert create'")->required();
  sign->add_option("--ip", sign_args->ips, "an IP address the holder is reached at (repeatable)");
  sign->add_option("--dns", sign_args->dns, "a further DNS name (repeatable)");
  sign->add_option("--days", sign_args->days, "validity in days")->capture_default_str();
  sign->callback([=] { *exit_code = RunCertSign(*global, *sign_args); });
}

}  // namespace dpr::cli
