#include "common/config/toml_config.h"

#include <toml++/toml.h>

#include <sstream>

#include "common/fs/durable_file.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr {

struct TomlConfig::Impl {
  toml::table root;
  // Leaf keys flattened to dotted paths, with the line each was defined on.
  std::map<std::string, const toml::node*> leaves;
};

namespace {

void Flatten(const toml::table& table, const std::string& prefix,
             std::map<std::string, const toml::node*>* out) {
  for (const auto& [key, node] : table) {
    std::string path =
        prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const toml::table* sub = node.as_table()) {
      Flatten(*sub, path, out);
    } else {
      (*out)[path] = &node;
    }
  }
}

}  // namespace

TomlConfig::TomlConfig(std::string name, std::unique_ptr<Impl> impl)
    : name_(std::move(name)), impl_(std::move(impl)) {}
TomlConfig::TomlConfig(TomlConfig&&) noexcept = default;
TomlConfig& TomlConfig::operator=(TomlConfig&&) noexcept = default;
TomlConfig::~TomlConfig() = default;

absl::StatusOr<TomlConfig> TomlConfig::Load(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 1 << 20));
  return Parse(text, path);
}

absl::StatusOr<TomlConfig> TomlConfig::Parse(const std::string& text, const std::string& name) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->root = toml::parse(text, name);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return absl::InvalidArgumentError(
        fmt::format("{}:{}:{}: {}", name, where.line, where.column, e.description()));
  }
  Flatten(impl->root, "", &impl->leaves);
  return TomlConfig(name, std::move(impl));
}

std::string TomlConfig::Where(const std::string& key) const {
  auto it = impl_->leaves.find(key);
  if (it == impl_->leaves.end()) return name_;
  return fmt::format("{}:{}", name_, it->second->source().begin.line);
}

bool TomlConfig::Has(const std::string& key) const { return impl_->leaves.count(key) > 0; }

absl::Status TomlConfig::GetString(const std::string& key, std::string* out) {
  asked_.insert(key);
  auto it = impl_->leaves.find(key);
  if (it == impl_->leaves.end()) return absl::OkStatus();
  auto value = it->second->value<std::string>();
  if (!value || !it->second->is_string()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: key '{}' must be a string", Where(key), key));
  }
  *out = *value;
  return absl::OkStatus();
}

absl::Status TomlConfig::GetInt(const std::string& key, int64_t* out) {
  asked_.insert(key);
  auto it = impl_->leaves.find(key);
  if (it == impl_->leaves.end()) return absl::OkStatus();
  if (!it->second->is_integer()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: key '{}' must be an integer", Where(key), key));
  }
  *out = *it->second->value<int64_t>();
  return absl::OkStatus();
}

absl::Status TomlConfig::GetBool(const std::string& key, bool* out) {
  asked_.insert(key);
  auto it = impl_->leaves.find(key);
  if (it == impl_->leaves.end()) return absl::OkStatus();
  if (!it->second->is_boolean()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: key '{}' must be true or false", Where(key), key));
  }
  *out = *it->second->value<bool>();
  return absl::OkStatus();
}

absl::Status TomlConfig::CheckNoUnknownKeys() const {
  for (const auto& [key, node] : impl_->leaves) {
    if (!asked_.count(key)) {
      return absl::InvalidArgumentError(fmt::format("{}: unknown key '{}'", Where(key), key));
    }
  }
  return absl::OkStatus();
}

}  // namespace dpr
