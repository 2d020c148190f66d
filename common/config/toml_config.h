// A TOML config file read into typed values, with every error naming
// "file:line". Keys are dotted paths ("tls.reload_seconds"). Callers ask for
// the keys they know; CheckNoUnknownKeys() then refuses any key nobody asked
// for, so a typo in a config file stops the daemon instead of being ignored.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dpr {

class TomlConfig {
 public:
  static absl::StatusOr<TomlConfig> Load(const std::string& path);
  static absl::StatusOr<TomlConfig> Parse(const std::string& text, const std::string& name);

  TomlConfig(TomlConfig&&) noexcept;
  TomlConfig& operator=(TomlConfig&&) noexcept;
  ~TomlConfig();

  // Each Get leaves *out unchanged when the key is absent, and fails with
  // "file:line: key 'k' must be a <type>" for a value of the wrong type.
  absl::Status GetString(const std::string& key, std::string* out);
  absl::Status GetInt(const std::string& key, int64_t* out);
  absl::Status GetBool(const std::string& key, bool* out);
  bool Has(const std::string& key) const;

  absl::Status CheckNoUnknownKeys() const;

  const std::string& name() const { return name_; }

 private:
  struct Impl;
  TomlConfig(std::string name, std::unique_ptr<Impl> impl);
  std::string Where(const std::string& key) const;

  std::string name_;
  std::unique_ptr<Impl> impl_;
  std::set<std::string> asked_;
};

}  // namespace dpr
