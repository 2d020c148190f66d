// Reads `dpctl job watch -o json` output: the seqs of its durable events
// (status messages), in order, to check a watcher lost or repeated none.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace dpr::testing {

inline std::vector<uint64_t> DurableSeqs(const std::string& text) {
  std::vector<uint64_t> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("message")) out.push_back(std::stoull(j.value("seq", "0")));
  }
  return out;
}

}  // namespace dpr::testing
