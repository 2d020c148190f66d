# Debian 12 packages only (deploy/install-deps.sh installs them). gRPC's CMake
# config brings protobuf, absl, OpenSSL, c-ares, re2 and zlib; never vendor
# another absl or protobuf next to it.
find_package(Threads REQUIRED)
find_package(Protobuf REQUIRED)          # module mode: Debian ships no config
find_package(gRPC CONFIG REQUIRED)
find_package(absl CONFIG REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(fmt CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(tomlplusplus CONFIG REQUIRED)
find_package(prometheus-cpp CONFIG REQUIRED)
if(DPR_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  include(GoogleTest)
endif()
