// Helpers for tests that touch the real filesystem and start real binaries:
// a self-deleting temp folder, child processes, and waiting for a file.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace dpr::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents on
// destruction unless DPR_KEEP_TEST_DIRS is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The folder holding dp-controller, dp-agent and dpctl of this build.
std::string BinDir();
// The source tree (for test scripts such as tests/support/tcp_proxy.py).
std::string SourceDir();

struct CommandResult {
  int exit_code = -1;  // -1 if killed by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a path) to completion, capturing its output.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& extra_env = {});

// A child process killed (SIGKILL) on destruction if still running.
class ChildProcess {
 public:
  // Starts argv with stdout and stderr appended to `log_path`.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit; returns the exit code, or 128+signal. -2 on timeout.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
};

// Polls until `path` exists and is non-empty; returns its contents without
// the trailing newline, or "" on timeout.
std::string WaitForFile(const std::string& path,
                        std::chrono::milliseconds timeout = std::chrono::seconds(15));

// A new certificate and key for `name` (role agent, controller or admin;
// reachable at 127.0.0.1) from the CA in `pki`, made in `staging` so a test
// can rename them over the pair in use, as an admin rotating it would.
struct StagedPair {
  std::string cert, key;
};
StagedPair StageNewPair(const std::string& pki, const std::string& staging, const std::string& role,
                        const std::string& name);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);

}  // namespace dpr::testing
